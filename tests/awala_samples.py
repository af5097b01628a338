"""Attribute values shared by the ``awala/`` unit tests."""

from __future__ import annotations

from datetime import UTC, datetime

PARCEL_ID = "f2b6d0c4-64b4-4d0c-9c53-2a0b1f7e2a11"
SENDER_ID = "0" + "a1" * 32
RECIPIENT_ID = "0" + "b2" * 32
CONTENT_TYPE = "application/vnd.relaycorp.letro.pairing-request-tmp"
CREATION = datetime(2024, 2, 29, 12, 34, 56, 789123, tzinfo=UTC)
