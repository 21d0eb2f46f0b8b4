"""Renting through a provider's API (plugin API 2): the words a plugin and the host share.

A plugin that can rent says which actions its provider's API allows (``ProviderAdapter.renting``)
and, as for offers, describes each call and reads each answer without doing any I/O. The worker
side (``gpubroker.workers.renting``) sends the calls, and is where the money rules live: a
provision is never retried blindly, an unknown outcome is resolved by looking for our tag, and a
refusal is reported with the provider's own reason.

Every instance the broker creates carries a tag, ``gpubroker-<rental id>``, in the field the
provider keeps with the instance (a name, label or tag). None of the supported providers offers
an idempotency key on create, so the tag is what makes a retried or crashed provision safe: the
executor looks for an instance carrying it before it creates one, and the reconciler finds any
instance the database does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from gpubroker.core.errors import ProviderError

TAG_PREFIX = "gpubroker-"


class RentalAction(StrEnum):
    PROVISION = "provision"
    STATUS = "status"
    INSTANCES = "instances"
    """List the account's instances (with their tags): what makes provisioning idempotent and
    what the reconciler reads. A provider that cannot list cannot rent through the broker."""
    SCALE = "scale"
    TERMINATE = "terminate"


REQUIRED_ACTIONS = frozenset(
    {RentalAction.PROVISION, RentalAction.STATUS, RentalAction.INSTANCES, RentalAction.TERMINATE}
)
"""What a plugin must support to rent at all; ``scale`` is optional."""


class _Renter(Protocol):
    renting: frozenset[RentalAction]


def can_rent(adapter: _Renter) -> bool:
    """Whether a plugin (its adapter class or an instance) supports all that renting needs."""
    return adapter.renting >= REQUIRED_ACTIONS


class InstanceState(StrEnum):
    """A provider's lifecycle, folded into the four states every provider has."""

    CREATING = "creating"
    RUNNING = "running"
    STOPPED = "stopped"
    TERMINATED = "terminated"


class RefusalKind(StrEnum):
    OUT_OF_CAPACITY = "out_of_capacity"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    AUTH = "auth"
    NOT_FOUND = "not_found"
    INVALID = "invalid"
    """The provider refused the request itself (a bad image, an unknown type): fix the request."""


def rental_tag(rental_id: str) -> str:
    """The tag an instance of rental ``rental_id`` carries at its provider."""
    return TAG_PREFIX + rental_id


def rental_id_of(tag: str | None) -> str | None:
    """The rental id a provider-side tag names, or None when the instance is not the broker's."""
    if tag is None or not tag.startswith(TAG_PREFIX) or len(tag) == len(TAG_PREFIX):
        return None
    return tag[len(TAG_PREFIX) :]


@dataclass(frozen=True)
class RentalRequest:
    """What to rent: the offer as the provider names it, and how to boot it.

    ``tag`` goes into the provider's name/label field. ``options`` holds what one provider needs
    beyond the common fields (an environment name, an SSH key name); each plugin's README says
    which it reads.
    """

    tag: str
    provider_offer_id: str
    gpu_count: int
    region: str = ""
    image: str = ""
    ssh_public_key: str = ""
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Instance:
    """One instance as the provider describes it."""

    instance_id: str
    state: InstanceState
    tag: str | None = None
    gpu_count: int | None = None
    price_per_hour: Decimal | None = None

    @property
    def rental_id(self) -> str | None:
        return rental_id_of(self.tag)


@dataclass(frozen=True)
class Refusal:
    """The provider said no, and why, in its own words."""

    kind: RefusalKind
    reason: str


class RentalRefused(ProviderError):
    """The provider refused a rental action; ``kind`` says what a user can do about it."""

    def __init__(self, provider: str, refusal: Refusal) -> None:
        super().__init__(provider, refusal.reason)
        self.kind = refusal.kind


class RentingUnsupported(ProviderError):
    """The provider's plugin does not support this action (its ``renting`` does not list it)."""


class InstanceNotFound(ProviderError):
    """The provider does not know the instance (any more): for a rental, it has gone."""
