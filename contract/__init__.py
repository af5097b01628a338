"""What crosses Temporal: every workflow input and result, signal, query result, and
activity input and result, as plain dataclasses, one module per flow.

The ingress, the workflows and the activities all import their payloads from here, so each
shape has one home and anyone may import it: the ingress reads these modules without
loading a line of the worker's I/O code.

The rules of this package:

* dataclasses only (and the constants their defaults need), with nothing more than a
  property that decodes a field;
* imports from the standard library only: no temporalio, httpx, pymongo, ``config``...;
* no ``from __future__ import annotations``: Temporal's JSON converter resolves a
  dataclass's type hints on every conversion, and string annotations made it compile and
  evaluate each one again every time (a few percent of the worker's CPU);
* field names, types and defaults are the JSON in the histories of running workflows:
  adding a field with a default is safe, renaming, retyping or removing one is not.

Binary content travels base64-encoded (``*_b64`` fields): the JSON converter would
otherwise write ``bytes`` as an array of numbers, several times larger in every history.
"""
