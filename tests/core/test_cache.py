import asyncio

import pytest

from gpubroker.core.cache import TwoTierCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_concurrent_misses_compute_once() -> None:
    cache = TwoTierCache(ttl_s=60)
    calls = 0

    async def compute() -> bytes:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return b"value"

    results = await asyncio.gather(*(cache.get_or_compute("k", compute) for _ in range(50)))
    assert results == [b"value"] * 50
    assert calls == 1


async def test_entries_expire_after_ttl() -> None:
    clock = Clock()
    cache = TwoTierCache(ttl_s=60, clock=clock, rand=lambda: 1.0)
    values = iter([b"a", b"b"])

    async def compute() -> bytes:
        return next(values)

    assert await cache.get_or_compute("k", compute) == b"a"
    clock.now += 59
    assert await cache.get_or_compute("k", compute) == b"a"
    clock.now += 2
    assert await cache.get_or_compute("k", compute) == b"b"


async def test_early_expiration_can_refresh_before_ttl() -> None:
    clock = Clock()
    draws = iter([1e-9])  # the first lookup computes without a draw; this one is "very unlucky"
    cache = TwoTierCache(ttl_s=60, clock=clock, rand=lambda: next(draws))
    computed = 0

    async def compute() -> bytes:
        nonlocal computed
        computed += 1
        clock.now += 1.0  # each computation takes a second
        return b"v"

    await cache.get_or_compute("k", compute)
    clock.now += 50  # well before expiry, but -log(1e-9) * 1s > the 10s left
    await cache.get_or_compute("k", compute)
    assert computed == 2


async def test_l2_is_bounded() -> None:
    cache = TwoTierCache(max_entries=3)
    for key in "abcde":
        await cache.get_or_compute(key, lambda key=key: asyncio.sleep(0, key.encode()))
    assert list(cache._l2) == ["c", "d", "e"]


async def test_failed_computation_is_not_cached_and_reaches_every_waiter() -> None:
    cache = TwoTierCache()

    async def boom() -> bytes:
        await asyncio.sleep(0.01)
        raise LookupError("no")

    results = await asyncio.gather(*(cache.get_or_compute("k", boom) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(result, LookupError) for result in results)
    assert await cache.get_or_compute("k", lambda: asyncio.sleep(0, b"ok")) == b"ok"


async def test_unreachable_redis_degrades_to_l2(caplog: pytest.LogCaptureFixture) -> None:
    cache = TwoTierCache("redis://127.0.0.1:1/0")
    assert await cache.get_or_compute("k", lambda: asyncio.sleep(0, b"v")) == b"v"
    assert not cache.redis_available
    assert "Redis unavailable" in caplog.text
    await cache.close()
