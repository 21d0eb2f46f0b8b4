"""The two-tier cache on the real Redis: shared between instances, and surviving its loss."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from gpubroker.core.cache import TwoTierCache
from tests.conftest import Services

pytestmark = pytest.mark.integration


async def test_a_value_computed_by_one_instance_is_served_to_another(services: Services) -> None:
    first, second = TwoTierCache(services.redis_url), TwoTierCache(services.redis_url)
    key = f"shared-{uuid.uuid4()}"
    try:
        assert await first.get_or_compute(key, lambda: asyncio.sleep(0, b"computed once")) == b"computed once"

        async def must_not_run() -> bytes:
            raise AssertionError("second instance recomputed a value held in Redis")

        assert await second.get_or_compute(key, must_not_run) == b"computed once"
    finally:
        await first.close()
        await second.close()


async def test_concurrent_misses_on_one_key_compute_once_across_two_instances(services: Services) -> None:
    first, second = TwoTierCache(services.redis_url), TwoTierCache(services.redis_url)
    key = f"stampede-{uuid.uuid4()}"
    computed = 0

    async def compute() -> bytes:
        nonlocal computed
        computed += 1
        await asyncio.sleep(0.2)  # every request below arrives while this one is computing
        return b"rendered"

    try:
        answers = await asyncio.gather(*(first.get_or_compute(key, compute) for _ in range(50)))
        assert set(answers) == {b"rendered"} and computed == 1
        later = await asyncio.gather(*(second.get_or_compute(key, compute) for _ in range(50)))
        assert set(later) == {b"rendered"} and computed == 1, "the other instance found it in Redis"
    finally:
        await first.close()
        await second.close()
