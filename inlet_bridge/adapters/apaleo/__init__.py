"""How do we hear of apaleo reservations, read them and write door codes back? Notify, then fetch.

`mapping` holds every apaleo name and turns reservations into `BookingEvent`s (pure);
`client` is the HTTP client (OAuth2 client credentials, the token cached and refreshed); the
receiver (`inlet_bridge/api/apaleo.py`) takes apaleo's webhook notifications and stores them;
`worker` fetches what they name and reads the window ahead now and then. The code goes back
to the reservation through `inlet_bridge/sinks/apaleo.py`; the fake apaleo for demos and
tests is `inlet_bridge/doubles/apaleo/`.
"""
