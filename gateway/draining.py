"""Stopping without cutting a request: on SIGTERM the gateway drains before the server stops.

A server that stops at once closes its idle keep-alive connections while clients may be writing
their next request on them: that request is reset, neither answered nor safely retried. So the
server's main process, on the first SIGTERM (or SIGINT), only marks the instance as draining
(a file its worker processes watch) and stops ``drain_s`` seconds later. While it drains, an
instance keeps answering, tells every client ``Connection: close`` so no connection is reused,
and reports ``/ready`` 503 so load balancers take it out; what arrives after the stop finds the
port closed and goes elsewhere. A second signal stops at once.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from typing import Any

MARKER_ENV = "GPUBROKER_DRAIN_FILE"
"""Where the main process says the instance drains; its workers inherit it."""


def draining_server(target: str, *, drain_s: float, **options: Any) -> Any:
    """A granian server for ``target`` that drains for ``drain_s`` before it stops."""
    from granian.server import Server

    class DrainingServer(Server):  # type: ignore[misc,valid-type]
        def __init__(self) -> None:
            super().__init__(target, **options)
            self._marker = Path(tempfile.mkdtemp(prefix="gpubroker-drain-")) / "draining"
            os.environ[MARKER_ENV] = str(self._marker)

        def signal_handler_interrupt(self, *args: Any, **kwargs: Any) -> None:
            if drain_s <= 0 or self._marker.exists():  # no drain asked, or a second signal
                return super().signal_handler_interrupt(*args, **kwargs)  # type: ignore[no-any-return]
            self._marker.touch()
            threading.Timer(drain_s, super().signal_handler_interrupt).start()

    return DrainingServer()


def draining() -> bool:
    """Whether this process's server has been told to stop (checked by the runtime's watcher)."""
    marker = os.environ.get(MARKER_ENV)
    return bool(marker) and Path(marker).exists()
