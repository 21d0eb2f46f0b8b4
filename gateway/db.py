"""Database work off the event loop, on a pooled connection that is given back when it is done.

Django keeps a connection per thread. Under ASGI, work sent to a thread would otherwise keep the
connection it opened for as long as that thread lives, and a thread per request kept one each
until PostgreSQL refused everyone. With the pool (``settings.database_config``) a connection
closed by Django goes back to the pool, so every piece of database work here ends by closing its
thread's connection. A database that is down or a pool with no free connection in time is a
``DatabaseUnavailable``, which the API answers as a 503 with ``Retry-After``.

The work runs on threads of its own, as many as the pool has connections (more would only wait
for one), so a database that hangs cannot take the threads other work needs. After a failure,
further work fails at once for ``PROBE_EVERY_S`` while one call at a time probes whether the
database is back: an outage costs each request a refusal, not a wait.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections

P = ParamSpec("P")
T = TypeVar("T")

RETRY_AFTER_S = 3
PROBE_EVERY_S = 1.0

_down_until = 0.0
_probing = False
_in_flight: set[Future[object]] = set()
"""Work handed to a database thread and not finished. A caller cancelled while its work runs
does not stop the thread: the work goes on, its transaction open, after the caller is gone."""
_in_flight_lock = threading.Lock()


class DatabaseUnavailable(Exception):
    """The database cannot be reached now; the work was not done (or rolled back)."""


def release() -> None:
    """Give this thread's connections back to the pool (or close them, without one)."""
    for connection in connections.all(initialized_only=True):
        connection.close()


async def run(work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``work(*args, **kwargs)`` in a database thread, its connection released afterwards."""
    global _down_until, _probing
    if time.monotonic() < _down_until or (_down_until and _probing):
        raise DatabaseUnavailable("the database was unreachable moments ago")
    probe = bool(_down_until)
    _probing = probe

    def call() -> T:
        try:
            return work(*args, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            raise DatabaseUnavailable(_first_line(exc)) from exc
        finally:
            release()

    running = _executor().submit(call)
    with _in_flight_lock:
        _in_flight.add(running)
    running.add_done_callback(_finished)
    try:
        result = await asyncio.wrap_future(running)
    except DatabaseUnavailable:
        _down_until = time.monotonic() + PROBE_EVERY_S
        raise
    finally:
        if probe:
            _probing = False
    _down_until = 0.0
    return result


async def finish(timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` for the work already running in database threads; whether it all
    ended. A shutdown calls it after cancelling its tasks, so that no transaction of theirs is
    still open once it returns (one would hold its locks against whatever comes next)."""
    with _in_flight_lock:
        running = list(_in_flight)
    if running:
        _, unfinished = await asyncio.wait([asyncio.wrap_future(work) for work in running], timeout=timeout_s)
        return not unfinished
    return True


def _finished(work: Future[object]) -> None:
    with _in_flight_lock:  # called on the database thread
        _in_flight.discard(work)


@functools.cache
def _executor() -> ThreadPoolExecutor:
    pool = settings.DATABASES["default"].get("OPTIONS", {}).get("pool", {})
    return ThreadPoolExecutor(max_workers=int(pool.get("max_size", 4)), thread_name_prefix="database")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def pool_stats() -> dict[str, int] | None:
    """The connection pool's figures (size, available, waiting, ...), None without a pool."""
    pool = getattr(connections["default"], "pool", None)
    if pool is None:
        return None
    stats = pool.get_stats()
    keys = ("pool_size", "pool_available", "requests_waiting", "connections_errors", "requests_errors")
    return {key: int(stats.get(key, 0)) for key in keys}
