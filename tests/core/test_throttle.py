from hypothesis import given, settings
from hypothesis import strategies as st

from gpubroker.core.throttle import TokenBucket


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


@settings(max_examples=50, deadline=None)
@given(rate=st.integers(1, 1200), requests=st.integers(1, 200))
async def test_never_faster_than_the_rate_after_the_burst(rate: int, requests: int) -> None:
    time = FakeTime()
    bucket = TokenBucket(rate, clock=time.clock, sleep=time.sleep)
    burst = max(1, round(rate / 6))
    for _ in range(requests):
        await bucket.acquire()
    allowed = burst + time.now * rate / 60
    assert requests <= allowed + 1e-6


async def test_a_burst_goes_through_without_waiting() -> None:
    time = FakeTime()
    bucket = TokenBucket(60, burst=5, clock=time.clock, sleep=time.sleep)
    waits = [await bucket.acquire() for _ in range(6)]
    assert waits[:5] == [0.0] * 5 and waits[5] > 0
