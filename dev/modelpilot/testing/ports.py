"""Free loopback ports for the harnesses (tests, `make cluster-up`, the demo)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    The kernel picks it; there is a small window before the caller binds it, which the harnesses
    accept (they fail loudly at start-up if the port was taken in between).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
