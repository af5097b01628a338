"""Temporal activities: every side effect of the service (MongoDB, outgoing messages, ...)."""
