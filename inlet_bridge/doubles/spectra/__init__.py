"""An imitation of a Spectra PMS hotel: the emulator (server) and its state."""
