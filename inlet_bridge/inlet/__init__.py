"""How does the service reach Inlet? The wire format (protocol) and the client.

The imitation of Inlet that tests, the demo and the certification run use is apart, in
`inlet_bridge/doubles/inlet/`."""

from inlet_bridge.inlet.client import InletClient
from inlet_bridge.inlet.protocol import (
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
