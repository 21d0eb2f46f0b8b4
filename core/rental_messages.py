"""What travels on the bus about rentals: commands to a provider's worker, its results, events.

The gateway never calls a provider. It records a rental, then asks the provider's worker to act
with a ``RentalCommand`` on ``gpubroker.rental-commands`` (keyed by rental id, so a rental's
commands stay in order); the worker answers with a ``RentalResult`` on
``gpubroker.rental-results``; the gateway applies it to the rental and announces each state
change as a ``RentalEvent`` on ``gpubroker.rental-events`` (SRS B.2: billing and analytics read
it). Every value carries its schema version; decoding raises ``ValueError`` naming what is
wrong.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from gpubroker.core.events import load_envelope
from gpubroker.core.renting import Instance, InstanceState, Refusal, RefusalKind, RentalRequest
from gpubroker.core.secrets import PLATFORM_CREDENTIALS, credentials_user

RENTAL_COMMANDS = "gpubroker.rental-commands"
RENTAL_RESULTS = "gpubroker.rental-results"
RENTAL_EVENTS = "gpubroker.rental-events"
AGENT_ACTIONS = "gpubroker.agents.actions"
TOPICS = (RENTAL_COMMANDS, RENTAL_RESULTS, RENTAL_EVENTS, AGENT_ACTIONS)
"""Renting's topics, beside ``events.TOPICS``."""

COMMAND_SCHEMA = "rental-command/1"
RESULT_SCHEMA = "rental-result/1"
EVENT_SCHEMA = "rental-event/1"

ACTIONS = ("provision", "status", "scale", "terminate", "instances")


@dataclass(frozen=True)
class RentalCommand:
    """Ask ``provider``'s worker to act. ``rental_id`` is empty for ``instances`` (a listing for
    the reconciler, answered under ``command_id``). ``credentials`` says whose account to act
    on: ``platform`` or ``user:<user id>`` (a reference, never the values)."""

    command_id: str
    provider: str
    action: str
    rental_id: str = ""
    request: RentalRequest | None = None
    instance_id: str = ""
    gpu_count: int = 0
    credentials: str = PLATFORM_CREDENTIALS

    def encode(self) -> bytes:
        data = asdict(self)
        if self.request is not None:
            data["request"] = {**asdict(self.request), "options": dict(self.request.options)}
        return orjson.dumps({"schema": COMMAND_SCHEMA, **data})

    @classmethod
    def decode(cls, value: bytes) -> RentalCommand:
        data = load_envelope(value, COMMAND_SCHEMA)
        if data.get("action") not in ACTIONS:
            raise ValueError(f"unknown rental action {data.get('action')!r}")
        request = data.get("request")
        try:
            return cls(
                command_id=str(data["command_id"]),
                provider=str(data["provider"]),
                action=str(data["action"]),
                rental_id=str(data.get("rental_id", "")),
                request=RentalRequest(**request) if isinstance(request, dict) else None,
                instance_id=str(data.get("instance_id", "")),
                gpu_count=int(data.get("gpu_count", 0)),
                credentials=_credentials_ref(data),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"a rental command lacks a field or has a wrong one: {exc}") from None


@dataclass(frozen=True)
class RentalResult:
    """What the worker's call came to: an instance (or the listing), or why not.

    ``outcome`` is ``ok``, ``refused`` (the provider said no: ``refusal`` says why), ``gone``
    (the provider no longer knows the instance) or ``error`` (the call failed, e.g. the provider
    was unreachable: ``error`` says how; the outcome is unknown). ``credentials`` is the
    command's: whose account a listing is of.
    """

    command_id: str
    provider: str
    action: str
    outcome: str
    rental_id: str = ""
    instance: Instance | None = None
    instances: tuple[Instance, ...] = ()
    refusal: Refusal | None = None
    error: str = ""
    at: str = ""
    credentials: str = PLATFORM_CREDENTIALS

    @property
    def why(self) -> str:
        """Why the call came to nothing, for a rental's ``last_error`` and the logs: the
        provider's refusal with its kind, or how the call failed."""
        if self.refusal is not None:
            return f"refused ({self.refusal.kind.value}): {self.refusal.reason}"
        return self.error or self.outcome

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "schema": RESULT_SCHEMA,
                "command_id": self.command_id,
                "provider": self.provider,
                "action": self.action,
                "outcome": self.outcome,
                "rental_id": self.rental_id,
                "instance": _instance_json(self.instance) if self.instance else None,
                "instances": [_instance_json(i) for i in self.instances],
                "refusal": {"kind": self.refusal.kind.value, "reason": self.refusal.reason} if self.refusal else None,
                "error": self.error,
                "at": self.at,
                "credentials": self.credentials,
            }
        )

    @classmethod
    def decode(cls, value: bytes) -> RentalResult:
        data = load_envelope(value, RESULT_SCHEMA)
        try:
            refusal = data.get("refusal")
            return cls(
                command_id=str(data["command_id"]),
                provider=str(data["provider"]),
                action=str(data["action"]),
                outcome=str(data["outcome"]),
                rental_id=str(data.get("rental_id", "")),
                instance=_instance(data["instance"]) if data.get("instance") else None,
                instances=tuple(_instance(i) for i in data.get("instances") or ()),
                refusal=Refusal(RefusalKind(refusal["kind"]), str(refusal["reason"])) if refusal else None,
                error=str(data.get("error", "")),
                at=str(data.get("at", "")),
                credentials=_credentials_ref(data),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"a rental result lacks a field or has a wrong one: {exc}") from None


@dataclass(frozen=True)
class RentalEvent:
    """One state change of a rental (SRS B.2 ``{rental_id, user_id, event_type}``, plus what
    billing needs: the state, the cost so far and, once ended, the final cost).

    ``sequence`` grows with every event the gateway writes (its outbox row's id), so a rental's
    events are in order by it and a reader drops one it has seen (a record can reach the topic
    twice when a gateway stops between Kafka's acknowledgement and its own commit)."""

    rental_id: str
    user_id: int
    event_type: str
    state: str
    provider: str
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)
    sequence: int = 0

    def as_json(self) -> dict[str, Any]:
        """The record as JSON values (decimals as their exact text)."""
        return orjson.loads(self.encode())  # type: ignore[no-any-return]

    def encode(self) -> bytes:
        return orjson.dumps({"schema": EVENT_SCHEMA, **asdict(self), "at": self.at.isoformat()}, default=_decimal_text)


def _credentials_ref(data: dict[str, Any]) -> str:
    """The record's credentials reference, checked (records from before it default to the platform's)."""
    ref = str(data.get("credentials", PLATFORM_CREDENTIALS))
    credentials_user(ref)
    return ref


def _decimal_text(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _instance_json(instance: Instance) -> dict[str, Any]:
    return {
        "instance_id": instance.instance_id,
        "state": instance.state.value,
        "tag": instance.tag,
        "gpu_count": instance.gpu_count,
        "price_per_hour": None if instance.price_per_hour is None else str(instance.price_per_hour),
    }


def _instance(data: dict[str, Any]) -> Instance:
    price = data.get("price_per_hour")
    return Instance(
        str(data["instance_id"]),
        InstanceState(data["state"]),
        data.get("tag"),
        data.get("gpu_count"),
        Decimal(price) if price is not None else None,
    )


AGENT_ACTION_SCHEMA = "agent-action/1"


@dataclass(frozen=True)
class AgentActionEvent:
    """An agent's action changed status (SRS B.2 ``{agent_id, action_id, action_type}``)."""

    agent_id: str
    action_id: str
    action_type: str
    status: str
    user_id: int
    at: datetime
    reason: str = ""
    result: dict[str, Any] | None = None

    def encode(self) -> bytes:
        return orjson.dumps(
            {"schema": AGENT_ACTION_SCHEMA, **asdict(self), "at": self.at.isoformat()}, default=_decimal_text
        )
