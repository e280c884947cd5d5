"""The demo hotel: its properties file and the `inlet-bridge demo` command."""
