"""How does each PMS's data become normalized booking events? One package per PMS.

An adapter only turns the PMS's data into `BookingEvent`s and writes access codes back to
the PMS; it never calls Inlet (docs/architecture.md, "Layers").
"""
