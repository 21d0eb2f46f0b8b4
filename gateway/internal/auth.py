"""``/internal/v1/auth``: what a token stands for now, for components that take tokens from users
(SRS B.1 ``validate-token``)."""

from __future__ import annotations

from typing import Annotated

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import ConfigDict, Field

from gpubroker.gateway.identity.tokens import AuthError
from gpubroker.gateway.runtime import current
from gpubroker.gateway.schemas import Error

router = Router(tags=["internal"])


class TokenBody(Schema):
    model_config = ConfigDict(extra="forbid")

    token: Annotated[str, Field(min_length=1, max_length=4096)]


class TokenVerdict(Schema):
    valid: bool
    reason: str | None = Field(description="Why the token is not valid.")
    kind: str | None = Field(description="user, agent or platform.")
    subject: str | None
    plan: str | None = Field(description="The account's plan now, not when the token was made.")
    user_id: int | None


@router.post("/validate-token", response={200: TokenVerdict, 401: Error, 403: Error, 422: Error})
async def validate_token(request: HttpRequest, body: TokenBody) -> dict[str, object]:
    try:
        identity = await current().guard.identity_for_token(body.token)
    except AuthError as exc:
        return {"valid": False, "reason": str(exc), "kind": None, "subject": None, "plan": None, "user_id": None}
    return {
        "valid": True,
        "reason": None,
        "kind": identity.kind,
        "subject": identity.subject,
        "plan": identity.plan.value,
        "user_id": identity.user_id,
    }
