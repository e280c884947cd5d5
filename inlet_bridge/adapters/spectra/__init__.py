"""How do we read bookings from, and write door codes to, Spectra PMS?

`mapping` holds every Spectra name and turns payloads into `BookingEvent`s (pure);
`client` is the HTTP client; `poller` reads the feed; `leader` decides which replica polls.
Codes go back through `inlet_bridge/sinks/spectra.py`; the fake Spectra hotel for demos and
tests is `inlet_bridge/doubles/spectra/`.
"""

from inlet_bridge.adapters.spectra.client import SpectraClient, SpectraError
from inlet_bridge.adapters.spectra.mapping import (
    MappingResult,
    conference_to_event,
    reservation_to_event,
)

__all__ = [
    "MappingResult",
    "SpectraClient",
    "SpectraError",
    "conference_to_event",
    "reservation_to_event",
]
