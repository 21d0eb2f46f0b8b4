import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpubroker.core.topsis import Criterion, topsis


def reference(rows: list[list[float]], weights: list[float], benefit: list[bool]) -> list[float]:
    """TOPSIS written out plainly, one loop per step, to check the vectorised version."""
    m = len(weights)
    total_weight = sum(weights)
    w = [x / total_weight for x in weights]
    norms = [math.sqrt(sum(row[j] ** 2 for row in rows)) for j in range(m)]
    v = [[(row[j] / norms[j] * w[j]) if norms[j] else 0.0 for j in range(m)] for row in rows]
    ideal = [(max if benefit[j] else min)(r[j] for r in v) for j in range(m)]
    anti = [(min if benefit[j] else max)(r[j] for r in v) for j in range(m)]
    result = []
    for r in v:
        d_plus = math.sqrt(sum((r[j] - ideal[j]) ** 2 for j in range(m)))
        d_minus = math.sqrt(sum((r[j] - anti[j]) ** 2 for j in range(m)))
        result.append(d_minus / (d_plus + d_minus) if d_plus + d_minus else 0.5)
    return result


matrices = st.integers(1, 5).flatmap(
    lambda m: st.tuples(
        st.lists(st.lists(st.floats(0, 1e4, allow_nan=False), min_size=m, max_size=m), min_size=1, max_size=30),
        st.lists(st.floats(0.01, 10), min_size=m, max_size=m),
        st.lists(st.booleans(), min_size=m, max_size=m),
    )
)


@given(matrices)
def test_matches_the_reference_on_random_inputs(case: tuple[list[list[float]], list[float], list[bool]]) -> None:
    rows, weights, benefit = case
    criteria = [Criterion(f"c{j}", w, b) for j, (w, b) in enumerate(zip(weights, benefit, strict=True))]
    got = topsis(np.array(rows), criteria).closeness
    assert np.allclose(got, reference(rows, weights, benefit), atol=1e-9)
    assert ((got >= 0) & (got <= 1)).all()


def test_cheaper_and_faster_wins() -> None:
    criteria = [Criterion("price", 1, benefit=False), Criterion("tflops", 1, benefit=True)]
    ranking = topsis(np.array([[2.0, 100.0], [1.0, 200.0], [3.0, 50.0]]), criteria)
    assert list(ranking.order()) == [1, 0, 2]
    assert ranking.closeness[1] == 1.0 and ranking.closeness[2] == 0.0
    assert list(ranking.weights) == [0.5, 0.5]


@pytest.mark.parametrize(
    "matrix, weights",
    [([[1.0, -1.0]], [1, 1]), ([[1.0, float("nan")]], [1, 1]), ([[1.0, 2.0]], [0, 0]), ([[1.0]], [1, 1])],
)
def test_bad_input_is_refused(matrix: list[list[float]], weights: list[float]) -> None:
    criteria = [Criterion(f"c{j}", w, True) for j, w in enumerate(weights)]
    with pytest.raises(ValueError):
        topsis(np.array(matrix), criteria)


def test_no_rows() -> None:
    assert topsis(np.empty((0, 2)), [Criterion("a", 1, True), Criterion("b", 1, False)]).closeness.size == 0


@given(st.lists(st.floats(0, 100), min_size=1, max_size=60), st.integers(1, 70))
def test_top_k_is_the_head_of_the_full_order(prices: list[float], k: int) -> None:
    ranking = topsis(np.array([[p] for p in prices]), [Criterion("price", 1, benefit=False)])
    top = ranking.top(k)
    assert np.allclose(ranking.closeness[top], ranking.closeness[ranking.order()[: len(top)]])
