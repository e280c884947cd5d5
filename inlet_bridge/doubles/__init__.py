"""What imitates the systems around the service? Test doubles, apart from production code.

Real HTTP servers that tests, `inlet-bridge demo` and `inlet-bridge certify` run against:
`inlet` (Inlet's API, with faults and the readings where Inlet's contract is silent), `spectra`
(a Spectra PMS hotel) and `apaleo` (apaleo's notifications and reservation API). Nothing in
production code imports them (an import contract in pyproject.toml says so); the CLI starts
them only for the sandbox, emulator, demo and certification commands.
"""
