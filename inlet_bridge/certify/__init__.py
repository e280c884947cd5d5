"""Self-certification: Inlet's certification scenarios run against the real service."""
