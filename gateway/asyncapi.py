"""The streaming half of the contract as an AsyncAPI 3.0 document (``/api/v2/asyncapi.json``).

Three ways to be told: the WebSocket (``/ws/providers/``), the Server-Sent Events streams
(``/api/v2/providers/stream`` and ``/api/v2/analytics/market/stream``) and, for the platform's
own components, the Kafka topics. Every schema comes from a model the code uses: the streams'
payloads from ``realtime/messages.py``, the Kafka envelopes from the dataclasses in
``gpubroker.core.events`` (their JSON form, as ``encode`` writes it) and the offer from
``gpubroker.core.offer``. Nothing here repeats a field by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from gpubroker.core import events, rental_messages
from gpubroker.core.offer import Offer
from gpubroker.gateway.realtime import messages
from gpubroker.gateway.realtime.sockets import MAX_CHANNELS, MAX_MESSAGE_BYTES

REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Topic:
    address: str
    envelope: type | None
    """The dataclass written to the topic (None: the offer envelope)."""
    schema: str
    key: str
    description: str


TOPICS = [
    Topic(
        events.OFFERS,
        None,
        events.OFFER_SCHEMA,
        "the offer's id",
        "Every offer's latest state (compacted): a worker writes it at each poll that changes it; an empty "
        "value (tombstone) withdraws it. Gateways rebuild their catalogue from it.",
    ),
    Topic(
        events.PRICE_UPDATES,
        events.PriceUpdate,
        events.PRICE_UPDATE_SCHEMA,
        "the offer's id",
        "An offer's price moved between two polls (prices as exact decimal digits).",
    ),
    Topic(
        events.PROVIDER_EVENTS,
        events.ProviderEvent,
        events.PROVIDER_EVENT_SCHEMA,
        "the provider's name",
        "Polls finished or failed, circuits opening and closing, provider.degraded and provider.recovered.",
    ),
    Topic(
        events.PRICE_ALERTS,
        events.PriceAlert,
        events.PRICE_ALERT_SCHEMA,
        "the offer's id",
        "The stream analytics' significant changes and anomalies, and users' own alert rules firing; "
        f"beside them, notices to one user ({events.ACCOUNT_NOTICE_SCHEMA}).",
    ),
    Topic(
        events.PRICE_AGGREGATES,
        events.PriceAggregate,
        events.PRICE_AGGREGATE_SCHEMA,
        "GPU type and continent, e.g. H100|europe (H100|* for every continent)",
        "Each closed 1-minute window of the market's per-GPU prices (compacted: the latest per key).",
    ),
    Topic(
        rental_messages.RENTAL_COMMANDS,
        rental_messages.RentalCommand,
        rental_messages.COMMAND_SCHEMA,
        "the rental's id (a listing's command id)",
        "The gateway asks a provider's worker to provision, read, scale or terminate an instance, or to list them.",
    ),
    Topic(
        rental_messages.RENTAL_RESULTS,
        rental_messages.RentalResult,
        rental_messages.RESULT_SCHEMA,
        "the rental's id (a listing's command id)",
        "What a worker's call to its provider came to: the instance, a refusal in the provider's words, or an error.",
    ),
    Topic(
        rental_messages.RENTAL_EVENTS,
        rental_messages.RentalEvent,
        rental_messages.EVENT_SCHEMA,
        "the rental's id",
        "Every state change of a rental, with its cost so far and, once ended, its final cost.",
    ),
    Topic(
        rental_messages.AGENT_ACTIONS,
        rental_messages.AgentActionEvent,
        rental_messages.AGENT_ACTION_SCHEMA,
        "the agent's id",
        "Every status change of an agent's action.",
    ),
    Topic(
        events.WEBHOOKS,
        events.WebhookDelivery,
        events.WEBHOOK_DELIVERY_SCHEMA,
        "the webhook's id",
        "Signed webhook deliveries, exactly as they are to be POSTed, for the delivery service.",
    ),
]
SOCKET_MESSAGES: dict[str, tuple[type[BaseModel], str]] = {
    # name: (model, who sends it)
    "subscribe": (messages.Subscribe, "client"),
    "ping": (messages.Ping, "client"),
    "connectionEstablished": (messages.ConnectionEstablished, "server"),
    "subscribed": (messages.Subscribed, "server"),
    "pong": (messages.Pong, "server"),
    "socketError": (messages.SocketError, "server"),
    "socketGap": (messages.SocketGap, "server"),
    "socketEvent": (messages.SocketEvent, "server"),
}
OFFER_STREAM_EVENTS = [
    "price_update", "availability", "offer_added", "offer_removed", "health_status", "price_alert", "alert"
]  # fmt: skip


def document(version: str) -> dict[str, Any]:
    """The AsyncAPI document for API ``version``."""
    models: list[type[BaseModel]] = [
        *messages.EVENTS.values(),
        messages.AccountNotice,
        messages.Gap,
        *(model for model, _ in SOCKET_MESSAGES.values()),
        Offer,
    ]
    _, definitions = models_json_schema(
        [(model, "serialization") for model in sorted(set(models), key=lambda m: m.__name__)], ref_template=REF
    )
    schemas: dict[str, Any] = dict(definitions.get("$defs", {}))
    component_messages: dict[str, Any] = {}

    for name, (model, sender) in SOCKET_MESSAGES.items():
        component_messages[name] = _message(name, model, f"Sent by the {sender}.")
    for kind in sorted(set(messages.EVENTS)):
        model = messages.EVENTS[kind]
        component_messages[_event_message(kind)] = _message(kind, model, _first_line(model), event=kind)
    component_messages["accountNotice"] = _message(
        "alert", messages.AccountNotice, _first_line(messages.AccountNotice), event="alert"
    )
    component_messages["gap"] = _message("gap", messages.Gap, _first_line(messages.Gap), event="gap")
    for kind, envelope, message_type, private in (
        ("rental", rental_messages.RentalEvent, "rental", ("user_id",)),
        ("agent_action", rental_messages.AgentActionEvent, "action", ()),
    ):
        name = _event_message(kind)
        schemas[name], nested = _pushed_record_schema(envelope, message_type, private)
        schemas.update(nested)
        component_messages[name] = {
            "name": kind,
            "title": kind,
            "summary": f"As its Kafka record, without the schema tag{' and the owner' if private else ''}.",
            "contentType": "application/json",
            "payload": {"$ref": REF.format(model=name)},
            "x-gpubroker-event": kind,
        }

    channels: dict[str, Any] = {
        "providersSocket": {
            "address": "/ws/providers/",
            "title": "The WebSocket",
            "description": (
                "Subscribe to channels and receive their events, each wrapped as a socketEvent whose "
                "`data` is the payload of its event type (the same as on the SSE streams). "
                f"Authenticate with `?token=` (an access token or an API key) or connect anonymously at "
                f"the Free plan's limits. A connection holds at most {MAX_CHANNELS} channels; a message "
                f"over {MAX_MESSAGE_BYTES} bytes closes it with 1009. Refusals close with 4401 (credentials), "
                "4403 (plan), 4404 (path) or 4429 (rate limit)."
            ),
            "servers": [{"$ref": "#/servers/websocket"}],
            "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in SOCKET_MESSAGES}
            | {"rentalEvent": {"$ref": "#/components/messages/rentalEvent"}},
            "bindings": {
                "ws": {
                    "query": {
                        "type": "object",
                        "properties": {"token": {"type": "string", "description": "Access token or API key."}},
                    }
                }
            },
        },
        "agentSocket": {
            "address": "/ws/agents/{agentId}/",
            "title": "An agent's WebSocket",
            "description": (
                "The agent's own actions as their status changes, each a socketEvent whose `data` is an "
                'agentActionEvent; `{"type": "ping"}` is answered with a pong. Only the agent\'s own service '
                "token may connect; another agent's id closes the connection with 4404."
            ),
            "parameters": {"agentId": {"description": "The agent's id, as registering it answered."}},
            "servers": [{"$ref": "#/servers/websocket"}],
            "messages": {
                name: {"$ref": f"#/components/messages/{name}"}
                for name in ("ping", "pong", "socketError", "socketEvent", "agentActionEvent")
            },
        },
        "offersStream": {
            "address": "/api/v2/providers/stream",
            "title": "Offer changes as Server-Sent Events",
            "description": (
                "GET with the list's filters as query parameters. Each event has an `id` (resume with the "
                "`Last-Event-ID` header or `last_event_id`), an `event` line naming its type and one `data` "
                "line of JSON. A comment line keeps a quiet stream open; a `gap` event says how many events a "
                "slow reader lost. `alert` and `rental` events are the signed-in caller's own (`rental` "
                "whatever the filters)."
            ),
            "servers": [{"$ref": "#/servers/http"}],
            "messages": {
                _event_message(kind): {"$ref": f"#/components/messages/{_event_message(kind)}"}
                for kind in OFFER_STREAM_EVENTS
            }
            | {
                "accountNotice": {"$ref": "#/components/messages/accountNotice"},
                "rentalEvent": {"$ref": "#/components/messages/rentalEvent"},
                "gap": {"$ref": "#/components/messages/gap"},
            },
        },
        "marketStream": {
            "address": "/api/v2/analytics/market/stream",
            "title": "The market's 1-minute windows as Server-Sent Events (Pro)",
            "description": "GET with `gpu` and `continent` to narrow it; resumable like the offers' stream.",
            "servers": [{"$ref": "#/servers/http"}],
            "messages": {
                "marketEvent": {"$ref": "#/components/messages/marketEvent"},
                "gap": {"$ref": "#/components/messages/gap"},
            },
        },
    }
    for topic in TOPICS:
        name = _topic_name(topic)
        schemas[name], nested = _envelope_schema(topic)
        schemas.update(nested)
        component_messages[name] = {
            "name": topic.schema,
            "title": topic.schema,
            "summary": topic.description,
            "contentType": "application/json",
            "payload": {"$ref": REF.format(model=name)},
            "bindings": {"kafka": {"key": {"type": "string", "description": topic.key}}},
        }
        channels[name] = {
            "address": topic.address,
            "title": topic.address,
            "description": topic.description + f" Malformed records go to {events.dead_letter_topic(topic.address)}.",
            "servers": [{"$ref": "#/servers/kafka"}],
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
    schemas["AccountNoticeRecord"], nested = _record_schema(events.AccountNotice, events.ACCOUNT_NOTICE_SCHEMA)
    schemas.update(nested)
    component_messages["accountNoticeRecord"] = {
        "name": events.ACCOUNT_NOTICE_SCHEMA,
        "title": events.ACCOUNT_NOTICE_SCHEMA,
        "summary": "News for one user about their own account, e.g. a webhook disabled.",
        "contentType": "application/json",
        "payload": {"$ref": REF.format(model="AccountNoticeRecord")},
        "bindings": {"kafka": {"key": {"type": "string", "description": "the user's id"}}},
    }
    channels[_topic_name(TOPICS[3])]["messages"]["accountNoticeRecord"] = {
        "$ref": "#/components/messages/accountNoticeRecord"
    }

    operations: dict[str, Any] = {
        "sendSocketMessage": _operation(
            "send", "providersSocket", ["subscribe", "ping"], "Subscribe, unsubscribe or ping."
        ),
        "receiveSocketMessage": _operation(
            "receive",
            "providersSocket",
            [name for name, (_, sender) in SOCKET_MESSAGES.items() if sender == "server"],
            "The server's answers and the subscribed channels' events.",
        )
        | {
            "messages": [
                *(
                    {"$ref": f"#/channels/providersSocket/messages/{name}"}
                    for name, (_, sender) in SOCKET_MESSAGES.items()
                    if sender == "server"
                ),
                {"$ref": "#/channels/providersSocket/messages/rentalEvent"},
            ]
        },
        "sendAgentSocketMessage": _operation("send", "agentSocket", ["ping"], "Ping."),
        "receiveAgentActions": _operation(
            "receive", "agentSocket", ["pong", "socketError", "socketEvent", "agentActionEvent"], "The agent's actions."
        ),
        "receiveOfferChanges": _operation(
            "receive", "offersStream", list(channels["offersStream"]["messages"]), "Offer changes matching the filters."
        ),
        "receiveMarketWindows": _operation(
            "receive", "marketStream", list(channels["marketStream"]["messages"]), "Each closed market window."
        ),
    }
    for topic in TOPICS:
        name = _topic_name(topic)
        operations[f"consume{name}"] = _operation(
            "receive", name, list(channels[name]["messages"]), f"Consume {topic.address}."
        )

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "GPUBROKER streams",
            "version": version,
            "description": (
                "Live GPU offers: the WebSocket and Server-Sent Events for clients, and the Kafka topics the "
                "platform's components share. Prices on the streams are JSON numbers in their exact digits "
                "(USD per hour); on Kafka they are strings of decimal digits."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "websocket": {"host": "localhost:8000", "protocol": "ws", "description": "A gateway instance."},
            "http": {"host": "localhost:8000", "protocol": "http", "description": "A gateway instance."},
            "kafka": {"host": "localhost:9092", "protocol": "kafka", "description": "The platform's brokers."},
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": dict(sorted(schemas.items())), "messages": component_messages},
    }


def _message(name: str, model: type[BaseModel], summary: str, event: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": name,
        "title": name,
        "summary": summary,
        "contentType": "application/json",
        "payload": {"$ref": REF.format(model=model.__name__)},
    }
    if event is not None:
        message["x-gpubroker-event"] = event
    return message


def _event_message(kind: str) -> str:
    head, *rest = kind.split("_")
    return head + "".join(part.capitalize() for part in rest) + "Event"


def _topic_name(topic: Topic) -> str:
    return "".join(part.capitalize() for part in topic.schema.split("/")[0].split("-")) + "Record"


def _first_line(model: type[BaseModel]) -> str:
    return (model.__doc__ or model.__name__).strip().split("\n\n")[0].replace("\n", " ")


def _envelope_schema(topic: Topic) -> tuple[dict[str, Any], dict[str, Any]]:
    if topic.envelope is None:  # the offer, inside its envelope
        offer = {
            "type": "object",
            "properties": {"schema": {"const": topic.schema}, "offer": {"$ref": REF.format(model="Offer")}},
            "required": ["schema", "offer"],
        }
        return offer, {}
    return _record_schema(topic.envelope, topic.schema)


def _json_form(envelope: type) -> tuple[dict[str, Any], dict[str, Any]]:
    """A dataclass's JSON form, and the schemas of the types it nests (components' schemas)."""
    body = TypeAdapter(envelope).json_schema(mode="serialization", ref_template=REF)
    return body, body.pop("$defs", {})


def _record_schema(envelope: type, schema: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A dataclass's JSON form (as its ``encode`` writes it), with the ``schema`` tag first; and
    the schemas of the types it nests."""
    body, nested = _json_form(envelope)
    body["properties"] = {"schema": {"const": schema}, **body["properties"]}
    body["required"] = ["schema", *body.get("required", [])]
    return body, nested


def _pushed_record_schema(
    envelope: type, message_type: str, private: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a socket pushes for a record: the record without its ``schema`` tag and ``private``
    fields, with its ``type``; and the schemas of the types it nests."""
    body, nested = _json_form(envelope)
    hidden = {"schema", *private}
    body["properties"] = {
        "type": {"const": message_type},
        **{name: value for name, value in body["properties"].items() if name not in hidden},
    }
    body["required"] = ["type", *(name for name in body.get("required", []) if name not in hidden)]
    return body, nested


def _operation(action: str, channel: str, names: list[str], summary: str) -> dict[str, Any]:
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": summary,
        "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in names],
    }
