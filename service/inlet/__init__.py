"""How does the service reach Inlet? The wire format (protocol), the client, and a sandbox
that imitates Inlet for tests, the demo and the certification run."""

from service.inlet.client import InletClient
from service.inlet.protocol import (
    GrantRequest,
    InletPaths,
    InletResult,
    RevokeRequest,
    UpdateRequest,
    classify,
    split_phone,
    update_from_grant,
)

__all__ = [
    "GrantRequest",
    "InletClient",
    "InletPaths",
    "InletResult",
    "RevokeRequest",
    "UpdateRequest",
    "classify",
    "split_phone",
    "update_from_grant",
]
