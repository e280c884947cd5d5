"""An imitation of apaleo: notifications, the reservation API and OAuth2 tokens."""
