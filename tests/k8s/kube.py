"""A small client for the Kubernetes API: discovery, create, and server-side apply as a dry-run
(every admission step and every schema check runs; nothing is stored)."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]

    @property
    def message(self) -> str:
        return str(self.body.get("message", self.body))


@dataclass
class KubeAPI:
    server: str
    token: str
    ca: Path
    _resources: dict[tuple[str, str], tuple[str, bool]] = field(default_factory=dict)

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Answer:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.server + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", content_type)
        context = ssl.create_default_context(cafile=str(self.ca))
        try:
            with urllib.request.urlopen(request, context=context, timeout=60) as response:
                return Answer(response.status, json.loads(response.read() or b"{}"))
        except urllib.error.HTTPError as error:
            return Answer(error.code, json.loads(error.read() or b"{}"))

    def resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        """(plural, namespaced) from discovery; refreshed once when a kind is unknown (a CRD
        just installed)."""
        if (api_version, kind) not in self._resources:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            listing = self.request("GET", base)
            assert listing.status == 200, f"discovery of {api_version}: {listing.message}"
            for resource in listing.body["resources"]:
                if "/" not in resource["name"]:
                    self._resources[(api_version, resource["kind"])] = (resource["name"], resource["namespaced"])
        assert (api_version, kind) in self._resources, f"the API server serves no {kind} in {api_version}"
        return self._resources[(api_version, kind)]

    def path(self, obj: dict[str, Any]) -> str:
        api_version, kind = obj["apiVersion"], obj["kind"]
        plural, namespaced = self.resource(api_version, kind)
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        namespace = f"/namespaces/{obj['metadata']['namespace']}" if namespaced else ""
        return f"{base}{namespace}/{plural}/{obj['metadata']['name']}"

    def apply(self, obj: dict[str, Any], *, dry_run: bool) -> Answer:
        """Server-side apply with strict field validation: an unknown or duplicated field is an
        error, not a warning."""
        query = "?fieldManager=gpubroker-tests&force=true&fieldValidation=Strict" + ("&dryRun=All" if dry_run else "")
        return self.request("PATCH", self.path(obj) + query, obj, content_type="application/apply-patch+yaml")

    def wait_established(self, crd_name: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            answer = self.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd_name}")
            conditions = {c["type"]: c["status"] for c in (answer.body.get("status") or {}).get("conditions") or []}
            if conditions.get("Established") == "True":
                return
            time.sleep(0.2)
        raise AssertionError(f"CRD {crd_name} not established after {timeout_s}s")
