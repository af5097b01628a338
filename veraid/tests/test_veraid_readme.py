"""The README's examples run as written: its ``python`` code blocks, in order, in one namespace.

They assert what they show, so an example that stopped being true fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import veraid

README = Path(__file__).parent.parent / "README.md"
CODE_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def test_the_readme_examples_run() -> None:
    text = README.read_text()
    namespace: dict[str, object] = {"__name__": "readme"}
    blocks = list(CODE_BLOCK.finditer(text))
    for block in blocks:
        # Blank lines before the code, so that a traceback names the README's own line.
        line = text.count("\n", 0, block.start(1))
        code = compile("\n" * line + block.group(1), str(README), "exec")
        exec(code, namespace)

    assert len(blocks) == 8
    assert isinstance(namespace["result"], veraid.SignatureVerification)
    assert isinstance(namespace["verification"], veraid.MemberIdVerification)
