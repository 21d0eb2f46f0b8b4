"""``/api/v2/users/favorites``: offers a user wants to find again."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from django.db import IntegrityError
from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import ConfigDict, Field

from gpubroker.gateway.errors import ApiError
from gpubroker.gateway.identity.access import Requires, caller
from gpubroker.gateway.identity.plans import Permission
from gpubroker.gateway.models import Favorite
from gpubroker.gateway.runtime import current
from gpubroker.gateway.schemas import Error

router = Router(tags=["favorites"], auth=Requires(Permission.ACCOUNT))
MAX_FAVORITES = 500


class FavoriteBody(Schema):
    model_config = ConfigDict(extra="forbid")

    offer_id: Annotated[str, Field(min_length=1, max_length=36)]


class FavoriteOut(Schema):
    offer_id: str
    created_at: datetime
    available: bool = Field(description="Whether the offer is in the catalogue now.")


@router.get("/favorites", response={200: list[FavoriteOut], 401: Error}, summary="Your favourite offers")
async def list_favorites(request: HttpRequest) -> list[dict[str, Any]]:
    """The caller's favourite offers, newest first, each saying whether it is in the catalogue
    now."""
    identity = caller(request)
    offers = current().catalog.offers
    return [
        {"offer_id": row.offer_id, "created_at": row.created_at, "available": row.offer_id in offers}
        async for row in Favorite.objects.filter(user_id=identity.user_id).order_by("-created_at")
    ]


@router.post("/favorites", response={201: FavoriteOut, 401: Error, 404: Error, 409: Error, 422: Error})
async def add_favorite(request: HttpRequest, body: FavoriteBody) -> Status[dict[str, Any]]:
    """Keep an offer as a favourite (at most 500)."""
    identity = caller(request)
    if body.offer_id not in current().catalog.offers:
        raise ApiError(404, "offer_id", f"no offer with id {body.offer_id!r}")
    if await Favorite.objects.filter(user_id=identity.user_id).acount() >= MAX_FAVORITES:
        raise ApiError(409, None, f"at most {MAX_FAVORITES} favourites; remove some first")
    try:
        row = await Favorite.objects.acreate(user_id=identity.user_id, offer_id=body.offer_id)
    except IntegrityError:
        raise ApiError(409, "offer_id", "already a favourite") from None
    return Status(201, {"offer_id": row.offer_id, "created_at": row.created_at, "available": True})


@router.delete("/favorites/{offer_id}", response={204: None, 401: Error, 404: Error})
async def remove_favorite(request: HttpRequest, offer_id: str) -> Status[None]:
    """Forget a favourite offer."""
    identity = caller(request)
    deleted, _ = await Favorite.objects.filter(user_id=identity.user_id, offer_id=offer_id).adelete()
    if not deleted:
        raise ApiError(404, "offer_id", f"{offer_id!r} is not one of your favourites")
    return Status(204, None)
