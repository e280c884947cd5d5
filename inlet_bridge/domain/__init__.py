"""The functional core: pure values and functions, no I/O and no clock reads (time is a parameter)."""
