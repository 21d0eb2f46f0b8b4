"""A record of the raw GPU names that resolved to no family, so each is logged once.

``resolve`` stays pure; a worker passes each match here and logs the name only when ``record``
says it is new, and the health view shows ``snapshot()`` so someone can add the missing alias.
"""

from __future__ import annotations

import threading

from gpubroker.core.gpus.resolver import GpuMatch


class UnknownGpuNames:
    """Thread-safe set of unknown raw names with how often each was seen.

    At most ``limit`` names are kept, so a provider sending junk cannot grow it without bound;
    new names past the limit are only counted in ``dropped`` (and never reported as new).
    """

    def __init__(self, limit: int = 1000) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._dropped = 0

    def record(self, match: GpuMatch) -> bool:
        """Count ``match`` if its name is unknown; ``True`` only the first time a name is seen."""
        if match.gpu_type is not None:
            return False
        with self._lock:
            if match.raw in self._counts:
                self._counts[match.raw] += 1
                return False
            if len(self._counts) >= self._limit:
                self._dropped += 1
                return False
            self._counts[match.raw] = 1
            return True

    def snapshot(self) -> dict[str, int]:
        """Each unknown name and how often it was seen, in the order first seen."""
        with self._lock:
            return dict(self._counts)

    @property
    def dropped(self) -> int:
        """Sightings of new names that arrived after the limit was reached."""
        with self._lock:
            return self._dropped

    def __len__(self) -> int:
        with self._lock:
            return len(self._counts)
