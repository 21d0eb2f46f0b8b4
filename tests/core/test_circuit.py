import pytest

from gpubroker.core.circuit import CircuitBreaker, CircuitOpen, CircuitState


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, transitions: list) -> CircuitBreaker:  # type: ignore[type-arg]
    return CircuitBreaker("acme", clock=clock, on_transition=lambda old, new: transitions.append((old, new)))


def test_sixty_percent_failures_open_within_ten_requests_then_half_open_and_close() -> None:
    clock, transitions = Clock(), []
    circuit = breaker(clock, transitions)
    outcomes = [False, True, False, True, False, False, True, False, True, False]  # 6 of 10 fail
    sent = 0
    while circuit.state is CircuitState.CLOSED:
        circuit.before_request()
        circuit.record(outcomes[sent])
        sent += 1
    assert sent <= 10 and circuit.state is CircuitState.OPEN
    with pytest.raises(CircuitOpen, match="circuit open"):
        circuit.before_request()
    clock.now += 29.9
    assert circuit.state is CircuitState.OPEN
    clock.now += 0.2
    assert circuit.state is CircuitState.HALF_OPEN
    circuit.before_request()
    with pytest.raises(CircuitOpen, match="probe"):
        circuit.before_request()  # only one probe at a time
    circuit.record(True)
    assert circuit.state is CircuitState.CLOSED
    assert transitions == [
        (CircuitState.CLOSED, CircuitState.OPEN),
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
        (CircuitState.HALF_OPEN, CircuitState.CLOSED),
    ]


def test_failure_while_half_open_opens_again() -> None:
    clock, transitions = Clock(), []
    circuit = breaker(clock, transitions)
    for _ in range(10):
        circuit.record(False)
    clock.now += 30
    circuit.before_request()
    circuit.record(False)
    assert circuit.state is CircuitState.OPEN
    clock.now += 29
    assert circuit.state is CircuitState.OPEN


def test_forty_percent_failures_keep_it_closed() -> None:
    circuit = breaker(Clock(), [])
    for ok in [False, True, True, False, True, False, True, True, False, True] * 5:
        circuit.record(ok)
    assert circuit.state is CircuitState.CLOSED
