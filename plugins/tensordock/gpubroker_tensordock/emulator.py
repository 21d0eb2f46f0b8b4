"""TensorDock's rental API (v2), emulated for tests (``gpubroker.core.testkit.emulator``).

Answers follow TensorDock's v2 documentation: ``{"data": {"type": "virtualmachine", "id", "name",
"status"}}`` for a created instance, ``{"data": {"instances": [{"type", "id", "attributes": {"name",
"status"}}]}}`` for the list, ``{"data": {"type": "success", "attributes": {"message"}}}`` for
delete and modify, and ``{"errors": [{"status", "title", "detail"}]}`` for a refusal. One instance
is answered in the JSON:API envelope with its GPUs and rate (see the README on that answer).
"""

from __future__ import annotations

import re
from typing import Any

from gpubroker.core.renting import InstanceState, Refusal, RefusalKind
from gpubroker.core.testkit.emulator import Answer, Cloud, Dialect, EmulatedInstance, EmulatedRequest

_INSTANCE = re.compile(r"^/api/v2/instances/([^/]+)(/modify)?/?$")
_ERRORS = {
    RefusalKind.OUT_OF_CAPACITY: (400, "Bad Request", "Not enough GPUs available on this hostnode"),
    RefusalKind.INSUFFICIENT_BALANCE: (400, "Bad Request", "Insufficient balance: at least $1 is required"),
    RefusalKind.AUTH: (401, "Unauthorized", "Invalid API token"),
    RefusalKind.NOT_FOUND: (404, "Not Found", "Instance not found"),
    RefusalKind.INVALID: (400, "Bad Request", "Invalid request body"),
}


class TensorDockDialect(Dialect):
    def answer(self, request: EmulatedRequest, cloud: Cloud) -> Answer | None:
        body = request.json if isinstance(request.json, dict) else {}
        if request.path.rstrip("/") == "/api/v2/instances":
            if request.method == "POST":
                attributes = (body.get("data") or {}).get("attributes") or {}
                resources = attributes.get("resources") or {}
                (model, wanted), *_ = (resources.get("gpus") or {"gpu": {"count": 1}}).items()
                offer = f"{attributes.get('hostnode_id')}/{model}"
                instance = cloud.create(
                    tag=str(attributes.get("name", "")), offer_id=offer, gpu_count=int(wanted["count"])
                )
                created = {"type": "virtualmachine", "id": instance.instance_id, "name": instance.tag}
                return Answer(201, {"data": {**created, "status": _status(instance, cloud)}})
            if request.method == "GET":
                return Answer(200, {"data": {"instances": [_listed(i, cloud) for i in cloud.listed()]}})
        match = _INSTANCE.match(request.path)
        if match is None:
            return None
        instance_id, modify = match.groups()
        if modify and request.method == "PUT":
            cloud.scale(instance_id, int((body.get("gpus") or {}).get("count", 1)))
            return Answer(200, _success("Instance modified successfully"))
        if request.method == "GET":
            return Answer(200, {"data": _record(cloud.get(instance_id), cloud)})
        if request.method == "DELETE":
            cloud.terminate(instance_id)
            return Answer(200, _success("Instance deleted successfully"))
        return None

    def refusal(self, refusal: Refusal) -> Answer:
        status, title, detail = _ERRORS[refusal.kind]
        return Answer(status, {"errors": [{"status": str(status), "title": title, "detail": detail}]})


def _success(message: str) -> dict[str, Any]:
    return {"data": {"type": "success", "attributes": {"message": message}}}


def _status(instance: EmulatedInstance, cloud: Cloud) -> str:
    return "running" if instance.state(cloud.clock()) is InstanceState.RUNNING else "starting"


def _listed(instance: EmulatedInstance, cloud: Cloud) -> dict[str, Any]:
    attributes = {"name": instance.tag, "status": _status(instance, cloud)}
    return {"type": "virtualmachine", "id": instance.instance_id, "attributes": attributes}


def _record(instance: EmulatedInstance, cloud: Cloud) -> dict[str, Any]:
    _, _, model = instance.offer_id.partition("/")
    return {
        "type": "virtualmachine",
        "id": instance.instance_id,
        "attributes": {
            "name": instance.tag,
            "status": _status(instance, cloud),
            "rateHourly": float(instance.price_per_hour),
            "resources": {"gpus": [{"gpuV0Name": model, "count": instance.gpu_count}]},
        },
    }
