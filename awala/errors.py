"""The errors this package raises: one base class, one subclass per way input can be wrong."""


class AwalaError(Exception):
    """Base class for every error raised by the ``awala`` package."""


class InvalidCloudEvent(AwalaError):
    """The transport message does not carry a well-formed CloudEvent."""


class InvalidServiceMessage(AwalaError):
    """The CloudEvent is well formed but is not a usable incoming service message."""


class InvalidConnectionParams(AwalaError):
    """Bytes served as an Internet endpoint's connection parameters are not valid ones."""


class InvalidTargetHost(AwalaError):
    """An SRV record names a target that is neither a host name nor an IP address."""
