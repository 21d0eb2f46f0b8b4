"""Vast.ai's rental API, emulated for tests (``gpubroker.core.testkit.emulator``).

Paths, bodies and error answers follow docs.vast.ai (create instance, show instance(s), destroy
instance): create answers ``{"success": true, "new_contract": <id>}``, errors are
``{"success": false, "error": <code>, "msg": <text>}``.
"""

from __future__ import annotations

import re

from gpubroker.core.renting import InstanceState, Refusal, RefusalKind
from gpubroker.core.testkit.emulator import Answer, Cloud, Dialect, EmulatedInstance, EmulatedRequest

_ASK = re.compile(r"^/api/v0/asks/(\d+)/?$")
_INSTANCE = re.compile(r"^/api/v0/instances/(\d+)/?$")
_ERRORS = {
    RefusalKind.OUT_OF_CAPACITY: (400, "no_such_ask"),
    RefusalKind.INSUFFICIENT_BALANCE: (400, "insufficient_credit"),
    RefusalKind.NOT_FOUND: (404, "no_such_instance"),
    RefusalKind.AUTH: (401, "invalid_api_key"),
    RefusalKind.INVALID: (400, "invalid_args"),
}


class VastDialect(Dialect):
    def answer(self, request: EmulatedRequest, cloud: Cloud) -> Answer | None:
        if request.method == "PUT" and (ask := _ASK.match(request.path)):
            body = request.json or {}
            instance = cloud.create(tag=str(body.get("label", "")), offer_id=ask.group(1), gpu_count=1)
            return Answer(200, {"success": True, "new_contract": int(instance.instance_id)})
        if request.path.rstrip("/") == "/api/v0/instances" and request.method == "GET":
            return Answer(200, {"instances": [_record(i, cloud) for i in cloud.listed()]})
        if match := _INSTANCE.match(request.path):
            if request.method == "GET":
                return Answer(200, {"instances": _record(cloud.get(match.group(1)), cloud)})
            if request.method == "DELETE":
                cloud.terminate(match.group(1))
                return Answer(200, {"success": True, "msg": "Instance destroyed successfully"})
        return None

    def refusal(self, refusal: Refusal) -> Answer:
        status, code = _ERRORS[refusal.kind]
        return Answer(status, {"success": False, "error": code, "msg": refusal.reason})


def _record(instance: EmulatedInstance, cloud: Cloud) -> dict[str, object]:
    state = instance.state(cloud.clock())
    return {
        "id": int(instance.instance_id),
        "label": instance.tag,
        "actual_status": "running" if state is InstanceState.RUNNING else None,
        "cur_state": "running",
        "num_gpus": instance.gpu_count,
        "dph_total": float(instance.price_per_hour),
    }
