"""Spending limits on rentals: an agent's (set when it registers) and a user's own
(``/api/v2/rentals/budget``).

Both are the same two limits over a set of rentals: what the live ones cost per hour together
(with the rental or scale being asked for added), and what all of them have cost, ended ones
included. A provision or scale beyond either is refused before any provider is called; the
reconciler ends the running rentals of whoever is past one (a budget lowered below what runs, or
a total reached while renting).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Q

from gpubroker.gateway import db
from gpubroker.gateway.models import Agent, Rental, RentalBudget
from gpubroker.gateway.rentals.states import RentalState

COUNTED_HOURLY = (RentalState.REQUESTED, RentalState.PROVISIONING, RentalState.RUNNING)
"""The states whose price counts against a budget per hour: asked for, being made, or running."""


@dataclass(frozen=True)
class Spending:
    """What a set of rentals costs: per hour now, and in all so far."""

    per_hour: Decimal
    total: Decimal


def spending(rentals: Q, now: datetime) -> Spending:
    """What the rentals matching ``rentals`` cost (blocking: run it through ``db.run``)."""
    per_hour, total = Decimal(0), Decimal(0)
    for rental in Rental.objects.filter(rentals):
        total += rental.final_cost if rental.final_cost is not None else rental.cost_at(now)
        if rental.state in COUNTED_HOURLY:
            per_hour += rental.price_per_hour
    return Spending(per_hour, total)


def beyond(spent: Spending, per_hour: Decimal | None, total: Decimal | None, *, adding: Decimal) -> str | None:
    """Why ``spent`` with ``adding`` more per hour is beyond the limits (None: no limit), or None."""
    if per_hour is not None and spent.per_hour + adding > per_hour:
        return f"the rentals would cost {spent.per_hour + adding} USD per hour, over the budget of {per_hour}"
    if total is not None and spent.total >= total:
        return f"the rentals have cost {spent.total} USD, the whole budget of {total}"
    return None


async def over_budget(agent: Agent, now: datetime, *, adding: Decimal = Decimal(0)) -> str | None:
    """Why ``agent`` is (or, running ``adding`` more per hour, would be) over its budgets, or None."""
    spent = await db.run(spending, Q(agent=agent), now)
    return beyond(spent, agent.budget_per_hour, agent.budget_total, adding=adding)


async def user_over_budget(user_id: int, now: datetime, *, adding: Decimal = Decimal(0)) -> str | None:
    """Why the user is (or, running ``adding`` more per hour, would be) over their own rental
    budget, or None (also when they set none)."""
    budget = await db.run(lambda: RentalBudget.objects.filter(user_id=user_id).first())
    if budget is None or (budget.budget_per_hour is None and budget.budget_total is None):
        return None
    spent = await db.run(spending, Q(user_id=user_id), now)
    return beyond(spent, budget.budget_per_hour, budget.budget_total, adding=adding)
