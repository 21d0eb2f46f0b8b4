"""Database work off the event loop, on a pooled connection that is given back when it is done.

Django keeps a connection per thread. Under ASGI, work sent to a thread would otherwise keep the
connection it opened for as long as that thread lives, and a thread per request kept one each
until PostgreSQL refused everyone. With the pool (``settings.database_config``) a connection
closed by Django goes back to the pool, so every piece of database work here ends by closing its
thread's connection. A database that is down or a pool with no free connection in time is a
``DatabaseUnavailable``, which the API answers as a 503 with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import InterfaceError, OperationalError, connections

P = ParamSpec("P")
T = TypeVar("T")

RETRY_AFTER_S = 3


class DatabaseUnavailable(Exception):
    """The database cannot be reached now; the work was not done (or rolled back)."""


def release() -> None:
    """Give this thread's connections back to the pool (or close them, without one)."""
    for connection in connections.all(initialized_only=True):
        connection.close()


async def run(work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``work(*args, **kwargs)`` in a worker thread, its connection released afterwards."""

    def call() -> T:
        try:
            return work(*args, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            raise DatabaseUnavailable(_first_line(exc)) from exc
        finally:
            release()

    return await sync_to_async(call, thread_sensitive=False)()


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
