"""A rental's states and the only moves between them.

``requested`` (recorded, nothing asked of the provider yet) -> ``provisioning`` (the provider's
worker was asked; the instance may exist) -> ``running`` (the provider created it: billing
runs) -> ``terminating`` (asked to end) -> ``terminated`` (ended at the provider; the final cost
is known). ``failed`` ends a rental the provider refused, or one that never came to exist.
A rental asked to end while still provisioning goes to ``terminating`` too: whatever the
provider created for it is ended when its answer arrives.
"""

from __future__ import annotations

from enum import StrEnum


class RentalState(StrEnum):
    REQUESTED = "requested"
    PROVISIONING = "provisioning"
    RUNNING = "running"
    TERMINATING = "terminating"
    TERMINATED = "terminated"
    FAILED = "failed"


TRANSITIONS: dict[RentalState, frozenset[RentalState]] = {
    RentalState.REQUESTED: frozenset({RentalState.PROVISIONING, RentalState.FAILED, RentalState.TERMINATING}),
    RentalState.PROVISIONING: frozenset({RentalState.RUNNING, RentalState.FAILED, RentalState.TERMINATING}),
    RentalState.RUNNING: frozenset({RentalState.TERMINATING, RentalState.TERMINATED}),
    RentalState.TERMINATING: frozenset({RentalState.TERMINATED}),
    RentalState.TERMINATED: frozenset(),
    RentalState.FAILED: frozenset(),
}
"""``running -> terminated`` without ``terminating`` is the provider ending an instance on its
own (it vanished); the reconciler closes the rental with its cost."""

ENDED = frozenset({RentalState.TERMINATED, RentalState.FAILED})
LIVE = frozenset({RentalState.PROVISIONING, RentalState.RUNNING, RentalState.TERMINATING})
"""States in which an instance may exist at the provider."""


class IllegalTransition(ValueError):
    def __init__(self, old: RentalState, new: RentalState) -> None:
        super().__init__(f"a {old} rental cannot become {new}")
        self.old, self.new = old, new


def check(old: RentalState | str, new: RentalState) -> None:
    """Raise ``IllegalTransition`` unless ``old -> new`` is a move the machine allows."""
    old = RentalState(old)
    if new not in TRANSITIONS[old]:
        raise IllegalTransition(old, new)
