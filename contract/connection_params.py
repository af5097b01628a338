"""Connection parameters retrieval: the workflow's input and result, and the inputs and
results of its two activities (resolving the endpoint's SRV record, fetching the params)."""

import base64
from dataclasses import dataclass


@dataclass(frozen=True)
class ConnectionParamsInput:
    parcel_id: str
    server_endpoint_id: str
    requester_endpoint_id: str
    domain_name: str  # as the agent sent it: echoed in a misconfigured reply
    ascii_domain_name: str  # its A-label form: what is looked up
    retry_seconds: float


@dataclass(frozen=True)
class ConnectionParamsOutcome:
    """What was sent back, and why; the workflow's result, for operators and tests."""

    content_type: str
    reason: str
    gave_up_after_retries: bool = False


@dataclass(frozen=True)
class ResolveRequest:
    ascii_domain_name: str


@dataclass(frozen=True)
class ServiceTarget:
    host: str
    port: int


@dataclass(frozen=True)
class ResolvedEndpoint:
    """The PoHTTP servers of an Internet endpoint, in the order to try them (RFC 2782)."""

    targets: list[ServiceTarget]


@dataclass(frozen=True)
class FetchRequest:
    ascii_domain_name: str
    targets: list[ServiceTarget]


@dataclass(frozen=True)
class FetchedParams:
    """DER-encoded NodeConnectionParams that parsed, base64-encoded."""

    der_b64: str
    host: str

    @property
    def der(self) -> bytes:
        return base64.b64decode(self.der_b64)
