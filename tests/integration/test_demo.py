"""`inlet-bridge demo --once` converges on a fresh data folder and exits 0, Spectra included."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_once_converges(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["INLET_BRIDGE_DATA"] = str(tmp_path / "data")
    result = subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-m",
            "inlet_bridge",
            "demo",
            "--once",
            "--timeout",
            "60",
            "--port",
            str(free_port()),
            "--inlet-port",
            str(free_port()),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "converged" in result.stdout
    assert "active: code #" in result.stdout
    assert "waiting for the send window" in result.stdout
    assert "no access (cancelled" in result.stdout
    assert "demo PMS webhook (signature ok): access.granted" in result.stdout
    # The Spectra reservation arriving today got access, and its code went back to Spectra.
    active = re.search(
        r"spectra-fjord SP-\w+-1: active: code (#\d+\*) on L-202.*"
        r"; code written back to the Spectra reservation: (#\d+\*)",
        result.stdout,
    )
    assert active is not None, result.stdout
    assert active[1] == active[2]
    assert re.search(r"spectra-fjord SP-\w+-2: waiting for the send window", result.stdout)
    # The apaleo booking: notified, fetched, granted, its code in the reservation's comment.
    assert re.search(r"apaleo reservation AP\w+-1 created .* answered HTTP 200", result.stdout)
    apaleo = re.search(
        r"apaleo-fjord (AP\w+-1): active: code (#\d+\*) on L-201.*"
        r"; code written back to the apaleo reservation's comment: (#\d+\*)",
        result.stdout,
    )
    assert apaleo is not None, result.stdout
    assert apaleo[2] == apaleo[3]
    # The service's logs went to the data folder, with personal data masked.
    log = (tmp_path / "data" / "demo.log").read_text()
    assert '"action":"call.succeeded"' in log
    assert "ola@example.no" not in log
    assert "+4791234567" not in log
