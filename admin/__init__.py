"""Operator commands, run as ``python -m admin <command>`` with the worker's environment.

``pending`` and ``purge`` for one VeraId id's pairing data, ``undelivered list`` and
``undelivered resend`` for the messages the egress kept, ``describe`` for one workflow.
Each prints plain text, or JSON with ``--json``; see the README, "Operator commands".
"""
