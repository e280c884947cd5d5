"""How do we read bookings from, and write door codes to, Spectra PMS?

`mapping` holds every Spectra name and turns payloads into `BookingEvent`s (pure);
`client` is the HTTP client; `emulator` is a fake Spectra hotel for demos and tests.
"""

from service.adapters.spectra.client import SpectraClient, SpectraError
from service.adapters.spectra.mapping import (
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
