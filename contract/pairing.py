"""Contact pairing, both protocols: what the pair workflows receive, carry and report, what
their MongoDB activities take, and the VeraId refusal workflow's input and result."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from contract.messages import OutgoingMessage, dedup_key

# A pair continues as new once its history is this long, even while requests keep coming
# (Temporal's own suggestion comes at about 4,000 events only if the server is so set, and
# it terminates a workflow at 51,200 events): a pair resent to without end never hits a limit.
MAX_HISTORY_EVENTS = 10_000
# How long a pair workflow stays open after its last request, ignoring copies of the parcels
# it took: long enough for copies racing the ingress's record of the parcel (which catches
# every later one, for the whole dedup window), short enough that a matched pair's keys and
# bundles do not stay in a running workflow.
PAIR_LINGER = timedelta(hours=1)


@dataclass(frozen=True)
class PairingRequestReceived:
    """Signal: one side's pairing request, checked by the ingress before it was signalled.

    For VeraId requests the SignatureBundle was verified, the ids are in their matching
    form (see ``letro.veraid_ids.pairing_key``) and ``signature_bundle_b64`` holds the
    requester's SignatureBundle, forwarded on a match.
    """

    parcel_id: str
    server_endpoint_id: str
    requester_endpoint_id: str
    requester_veraid_id: str
    target_veraid_id: str
    requester_id_key_b64: str
    signature_bundle_b64: str = ""

    @property
    def dedup_key(self) -> str:
        return dedup_key(self.requester_endpoint_id, self.parcel_id)


@dataclass(frozen=True)
class WaitingRequest:
    """A request the pair workflow holds until the other side asks or it expires."""

    request: PairingRequestReceived
    first_received: datetime


@dataclass(frozen=True)
class TakenParcel:
    """A parcel the pair took, remembered for the dedup window without saying whose it was.

    ``digest`` is a prefix of the SHA-256 of its ``dedup_key`` (see workflows.pairing).
    """

    digest: str
    taken: datetime


@dataclass
class PairingInput:
    """A pair workflow's input, and its state carried across continue-as-new."""

    veraid_ids: list[str]
    request_ttl_seconds: float
    # How long the pair remembers a parcel it took and lingers after its last request: the
    # dedup window or PAIR_LINGER, whichever is shorter (the ingress remembers the rest of
    # the window). The default is what pairs started before the setting existed lingered.
    dedup_window_seconds: float = 3600.0
    max_history_events: int = MAX_HISTORY_EVENTS
    # State carried across continue-as-new.
    pending: list[WaitingRequest] = field(default_factory=list)
    taken_parcels: list[TakenParcel] = field(default_factory=list)
    # The dedup keys themselves, as runs started before the digests carried them.
    seen_parcels: list[str] = field(default_factory=list)
    # Requests signalled while the previous run was handing over, not yet looked at.
    inbox: list[PairingRequestReceived] = field(default_factory=list)
    matches: int = 0
    expirations: int = 0
    requests_handled: int = 0
    redeliveries_ignored: int = 0


@dataclass(frozen=True)
class PairingOutcome:
    matches: int
    expirations: int


@dataclass(frozen=True)
class PairingStatus:
    """What the ``status`` query shows an operator (or a test) about the pair right now.

    Every count is over the pair's whole life, across continue-as-new (runs before the
    counts were carried started the request counts afresh).
    """

    pending_requesters: list[str]
    matches: int
    expirations: int
    redeliveries_ignored: int
    requests_handled: int = 0  # new (not redelivered) requests taken in
    remembered_parcels: int = 0  # taken within the dedup window, so ignored if delivered again


@dataclass(frozen=True)
class PendingPairingRequest:
    """A contact pairing request waiting for its reciprocal one, as stored in MongoDB."""

    requester_veraid_id: str
    target_veraid_id: str
    requester_endpoint_id: str
    requester_id_key_b64: str
    first_received: datetime
    # Which protocol the request came by ("legacy" or "veraid"): requests of one never
    # match the other's, so the kind is part of the stored key.
    kind: str = "legacy"
    signature_bundle_b64: str | None = None  # VeraId requests: forwarded on a match
    # Set on a fresh run's first store: also read back what MongoDB holds for the pair.
    read_counterpart: bool = False


@dataclass(frozen=True)
class StoredPair:
    """What the store found for the pair when asked to read it back (``read_counterpart``).

    ``first_received`` is the stored request's creation date, earlier than the workflow's
    own when the document was already there (written by the original server, or by a run
    Temporal terminated). ``counterpart`` is the reciprocal request, if one is stored.
    """

    first_received: datetime
    counterpart: PendingPairingRequest | None = None


@dataclass(frozen=True)
class PairingRequestsToDelete:
    """Both directions of one pair of VeraId ids, whichever of them is stored."""

    veraid_id_a: str
    veraid_id_b: str
    kind: str = "legacy"


@dataclass(frozen=True)
class MatchToDeliver:
    """The ``deliver_pairing_match`` activity's input: a match's two messages, and the
    pair whose stored requests it concludes."""

    messages: list[OutgoingMessage]
    concluded: PairingRequestsToDelete


@dataclass(frozen=True)
class MatchDelivered:
    """Which of the match's messages the sink did not take at that first attempt."""

    undelivered_event_ids: list[str]


@dataclass(frozen=True)
class ContactPairingRefusalToSend:
    """A verified contact pairing request that earned a ``ContactPairingFailure``."""

    parcel_id: str
    sender_endpoint_id: str
    server_endpoint_id: str
    reason: str  # the ContactPairingFailureReason's name, for the Web UI and the logs
    failure_b64: str


@dataclass(frozen=True)
class ContactPairingRefusalOutcome:
    reason: str
