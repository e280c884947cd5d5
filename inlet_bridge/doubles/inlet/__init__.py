"""An imitation of Inlet's API: the sandbox (server) and its state."""
