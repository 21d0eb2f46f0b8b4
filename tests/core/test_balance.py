import itertools
from collections import Counter

from gpubroker.core.balance import WeightedRoundRobin


def test_equal_weights_alternate() -> None:
    wrr = WeightedRoundRobin()
    picks = [wrr.pick(["eu", "us"]) for _ in range(10)]
    assert Counter(picks) == {"eu": 5, "us": 5}
    assert all(a != b for a, b in itertools.pairwise(picks))


def test_a_slow_target_gets_half_the_turns_and_recovers() -> None:
    wrr = WeightedRoundRobin()
    wrr.observe("us", ok=True, latency_s=2.5)
    assert wrr.weight("us") == wrr.weight("eu") / 2
    picks = Counter(wrr.pick(["eu", "us"]) for _ in range(300))
    assert picks["eu"] == 2 * picks["us"]
    wrr.observe("us", ok=True, latency_s=0.1)
    assert wrr.weight("us") == wrr.weight("eu")


def test_failures_lower_the_weight_but_never_to_zero() -> None:
    wrr = WeightedRoundRobin()
    for _ in range(20):
        wrr.observe("ap", ok=False, latency_s=0.1)
    assert 0 < wrr.weight("ap") < wrr.weight("eu")
    assert "ap" in {wrr.pick(["eu", "ap"]) for _ in range(100)}
