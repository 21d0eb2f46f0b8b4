"""Hyperstack's rental API, emulated for tests (``gpubroker.core.testkit.emulator``).

Paths, bodies and errors follow docs.hyperstack.cloud (create, list, retrieve, delete and resize
virtual machines; the error envelope ``{"status": false, "message", "error_reason"}``).
"""

from __future__ import annotations

import re
from typing import Any

from gpubroker.core.renting import InstanceState, Refusal, RefusalKind
from gpubroker.core.testkit.emulator import Answer, Cloud, Dialect, EmulatedInstance, EmulatedRequest

_VM = re.compile(r"^/v1/core/virtual-machines/(\d+)(/resize)?/?$")
_COUNT = re.compile(r"x(\d+)(?:-spot)?$")
_ERRORS = {
    RefusalKind.OUT_OF_CAPACITY: (409, "conflict", "Not enough resources available for the flavor"),
    RefusalKind.INSUFFICIENT_BALANCE: (400, "bad_request", "Insufficient balance to create the resource"),
    RefusalKind.AUTH: (401, "unauthorized", "Invalid API key"),
    RefusalKind.NOT_FOUND: (404, "not_found", "Virtual machine not found"),
    RefusalKind.INVALID: (400, "bad_request", "Invalid request"),
}


class HyperstackDialect(Dialect):
    def answer(self, request: EmulatedRequest, cloud: Cloud) -> Answer | None:
        body = request.json or {}
        if request.path.rstrip("/") == "/v1/core/virtual-machines":
            if request.method == "POST":
                flavor = str(body.get("flavor_name", ""))
                count = _COUNT.search(flavor)
                instance = cloud.create(
                    tag=str(body.get("name", "")), offer_id=flavor, gpu_count=int(count.group(1)) if count else 1
                )
                return Answer(200, _ok("Creating 1 virtual machine(s).", instances=[_record(instance, cloud)]))
            if request.method == "GET":
                return Answer(
                    200, _ok("Getting virtual machines success", instances=[_record(i, cloud) for i in cloud.listed()])
                )
        match = _VM.match(request.path)
        if match is None:
            return None
        vm_id, resize = match.groups()
        if resize and request.method == "POST":
            count = _COUNT.search(str(body.get("flavor_name", "")))
            cloud.scale(vm_id, int(count.group(1)) if count else 1)
            return Answer(200, _ok("Virtual machine resize initiated"))
        if request.method == "GET":
            return Answer(200, _ok("Getting virtual machine success", instance=_record(cloud.get(vm_id), cloud)))
        if request.method == "DELETE":
            cloud.terminate(vm_id)
            return Answer(200, _ok("Virtual machine deleting"))
        return None

    def refusal(self, refusal: Refusal) -> Answer:
        status, reason, message = _ERRORS[refusal.kind]
        return Answer(status, {"status": False, "message": message, "error_reason": reason})


def _ok(message: str, **fields: Any) -> dict[str, Any]:
    return {"status": True, "message": message, **fields}


def _record(instance: EmulatedInstance, cloud: Cloud) -> dict[str, Any]:
    state = instance.state(cloud.clock())
    family = _COUNT.sub("", instance.offer_id)
    return {
        "id": int(instance.instance_id),
        "name": instance.tag,
        "status": "ACTIVE" if state is InstanceState.RUNNING else "CREATING",
        "flavor": {"name": f"{family}x{instance.gpu_count}", "gpu": family, "gpu_count": instance.gpu_count},
        "labels": [instance.tag],
    }
