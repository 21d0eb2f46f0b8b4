"""``/api/v2/admin``: plans and the audit log, for the Admin plan."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import ConfigDict, Field

from gpubroker.gateway.errors import ApiError
from gpubroker.gateway.identity import audit
from gpubroker.gateway.identity.access import Requires, caller_identity
from gpubroker.gateway.identity.plans import Permission, Plan
from gpubroker.gateway.models import AuditEvent, User
from gpubroker.gateway.runtime import current
from gpubroker.gateway.schemas import Error

router = Router(tags=["admin"], auth=Requires(Permission.ADMIN))


class PlanBody(Schema):
    model_config = ConfigDict(extra="forbid")

    plan: Plan


class UserOut(Schema):
    id: int
    email: str
    plan: str
    is_active: bool


class AuditOut(Schema):
    at: datetime
    actor: str
    action: str
    target: str
    outcome: str
    client: str


@router.put("/users/{user_id}/plan", response={200: UserOut, 404: Error, 422: Error}, summary="Change a user's plan")
async def set_user_plan(request: HttpRequest, user_id: int, body: PlanBody) -> dict[str, Any]:
    """Change a user's plan (Admin)."""
    actor = caller_identity(request)
    if body.plan is Plan.ANONYMOUS:
        raise ApiError(422, "plan", "anonymous is not a plan a user can have")
    user = await User.objects.filter(pk=user_id).afirst()
    if user is None:
        raise ApiError(404, "user_id", f"no user {user_id}")
    user.plan = body.plan.value
    await user.asave(update_fields=["plan"])
    current().accounts.forget_user(user.pk)
    await audit.record(request, actor.subject, "user.plan", f"{user_id} {body.plan.value}")
    return {"id": user.pk, "email": user.email, "plan": user.plan, "is_active": user.is_active}


@router.get("/audit", response={200: list[AuditOut]}, summary="The latest audit events")
async def list_audit_events(
    request: HttpRequest, limit: Annotated[int, Field(ge=1, le=1000)] = Query(100, description="At most, newest first.")
) -> list[dict[str, Any]]:
    """The latest audit events, newest first (Admin)."""
    rows = AuditEvent.objects.order_by("-at", "-pk")[:limit]
    return [
        {"at": r.at, "actor": r.actor, "action": r.action, "target": r.target, "outcome": r.outcome, "client": r.client}
        async for r in rows
    ]
