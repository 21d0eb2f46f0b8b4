"""Lambda Cloud's rental API, emulated for tests (``gpubroker.core.testkit.emulator``).

Paths, bodies and errors follow Lambda's Cloud API OpenAPI document: launch answers
``{"data": {"instance_ids": [...]}}``, terminate ``{"data": {"terminated_instances": [...]}}``,
errors ``{"error": {"code", "message", "suggestion"}}``.
"""

from __future__ import annotations

from typing import Any

from gpubroker.core.renting import InstanceState, Refusal, RefusalKind
from gpubroker.core.testkit.emulator import Answer, Cloud, Dialect, EmulatedInstance, EmulatedRequest

_ERRORS = {
    RefusalKind.OUT_OF_CAPACITY: (
        400,
        "instance-operations/launch/insufficient-capacity",
        "Not enough capacity to fulfill launch request.",
    ),
    RefusalKind.INSUFFICIENT_BALANCE: (403, "global/account-inactive", "Your account is inactive."),
    RefusalKind.AUTH: (401, "global/invalid-api-key", "API key was invalid, expired, or deleted."),
    RefusalKind.NOT_FOUND: (404, "global/object-does-not-exist", "Specified instance does not exist."),
    RefusalKind.INVALID: (400, "global/invalid-parameters", "Invalid request."),
}


class LambdaDialect(Dialect):
    def answer(self, request: EmulatedRequest, cloud: Cloud) -> Answer | None:
        path, body = request.path.rstrip("/"), request.json or {}
        if request.method == "POST" and path == "/api/v1/instance-operations/launch":
            offer = f"{body.get('instance_type_name')}/{body.get('region_name')}"
            instance = cloud.create(
                tag=str(body.get("name", "")), offer_id=offer, gpu_count=1, region=str(body.get("region_name"))
            )
            return Answer(200, {"data": {"instance_ids": [instance.instance_id]}})
        if request.method == "POST" and path == "/api/v1/instance-operations/terminate":
            ended = [cloud.terminate(str(i)) for i in body.get("instance_ids", [])]
            return Answer(200, {"data": {"terminated_instances": [_record(i, cloud) for i in ended]}})
        if request.method == "GET" and path == "/api/v1/instances":
            return Answer(200, {"data": [_record(i, cloud) for i in cloud.listed()]})
        if request.method == "GET" and path.startswith("/api/v1/instances/"):
            return Answer(200, {"data": _record(cloud.get(path.rsplit("/", 1)[1]), cloud)})
        return None

    def refusal(self, refusal: Refusal) -> Answer:
        status, code, message = _ERRORS[refusal.kind]
        return Answer(status, {"error": {"code": code, "message": message, "suggestion": refusal.reason}})


def _record(instance: EmulatedInstance, cloud: Cloud) -> dict[str, Any]:
    state = instance.state(cloud.clock())
    status = {InstanceState.CREATING: "booting", InstanceState.RUNNING: "active"}.get(state, "terminated")
    instance_type, _, region = instance.offer_id.partition("/")
    return {
        "id": instance.instance_id,
        "name": instance.tag,
        "status": status,
        "ssh_key_names": [],
        "file_system_names": [],
        "actions": _actions(status),
        "region": {"name": region, "description": region},
        "instance_type": {
            "name": instance_type,
            "description": instance_type,
            "gpu_description": instance_type,
            "price_cents_per_hour": int(instance.price_per_hour * 100),
            "specs": {"vcpus": 8, "memory_gib": 64, "storage_gib": 512, "gpus": instance.gpu_count},
        },
    }


_ACTIONS = ("migrate", "rebuild", "restart", "cold_reboot", "terminate")


def _actions(status: str) -> dict[str, dict[str, Any]]:
    """The ``actions`` object every Instance carries (``InstanceActionAvailability``): what can
    be done to the instance in its status and, when blocked, the documented reason code."""
    if status == "active":
        return {name: {"available": True} for name in _ACTIONS}
    blocked = "vm-has-not-launched" if status == "booting" else "vm-is-terminating"
    actions = {name: {"available": False, "reason_code": blocked} for name in _ACTIONS}
    if status == "booting":
        actions["terminate"] = {"available": True}
    return actions
