"""The contract's documents pass the standard tools: the AsyncAPI CLI validates the streams'
document, Spectral with the contract's ruleset finds no error in the OpenAPI document (and does
find the errors a careless change would make), and oasdiff finds no breaking change against the
last release that the version and the changelog do not own up to.

The tools come from `scripts/api-tools/install` (npm and a Go module), which `scripts/test` starts
in the background; these tests run last and wait for it."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = REPO / "docs" / "openapi"
RELEASED = DOCUMENTS / "released"
CHANGELOG = REPO / "docs" / "api-changelog.md"
QUIET = {**os.environ, "ASYNCAPI_METRICS": "false", "NODE_ENV": "test", "SUPPRESS_NO_CONFIG_WARNING": "1"}


@pytest.fixture(scope="module")
def tools() -> dict[str, str]:
    printed = subprocess.run(
        [REPO / "scripts" / "api-tools" / "install"], check=True, capture_output=True, text=True, timeout=1200
    ).stdout
    return dict(shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in printed.splitlines())


def run(command: list[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=QUIET, cwd=REPO, **kwargs)


def test_the_streams_document_is_valid_asyncapi(tools: dict[str, str]) -> None:
    result = run([tools["GPUBROKER_ASYNCAPI"], "validate", DOCUMENTS / "asyncapi.json", "--fail-severity", "error"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is valid" in result.stdout


def lint(tools: dict[str, str], document: Path, tmp_path: Path) -> tuple[int, list[dict[str, Any]]]:
    """Spectral's exit code and the errors it found (severity 0)."""
    report = tmp_path / f"{document.stem}-lint.json"
    command = [tools["GPUBROKER_SPECTRAL"], "lint", "-r", DOCUMENTS / "spectral.yaml", "--fail-severity", "error"]
    result = run([*command, "-f", "json", "-o", report, document])
    return result.returncode, [p for p in json.loads(report.read_text() or "[]") if p["severity"] == 0]


def test_spectral_finds_no_error_in_the_openapi_document(tools: dict[str, str], tmp_path: Path) -> None:
    code, problems = lint(tools, DOCUMENTS / "openapi.json", tmp_path)
    assert code == 0 and not problems, problems[:5]


def test_the_ruleset_catches_what_a_careless_change_would_break(tools: dict[str, str], tmp_path: Path) -> None:
    document = json.loads((DOCUMENTS / "openapi.json").read_text())
    operation = document["paths"]["/api/v2/alerts"]["post"]
    operation["operationId"] = "create_alert"
    del operation["responses"]["403"], operation["security"]
    del document["paths"]["/api/v2/providers"]["get"]["parameters"][0]["example"]
    del document["components"]["responses"]["TooManyRequests"]["headers"]["Retry-After"]
    broken = tmp_path / "openapi.json"
    broken.write_text(json.dumps(document))
    code, problems = lint(tools, broken, tmp_path)
    found = {p["code"] for p in problems}
    assert code != 0
    assert {
        "operation-id-camel-case",
        "plan-routes-declare-403",
        "operation-security-declared",
        "parameter-example",
        "too-many-requests-says-when",
    } <= found


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def breaking_changes(tools: dict[str, str], base: Path, revision: Path) -> list[dict[str, Any]]:
    result = run([tools["GPUBROKER_OASDIFF"], "breaking", base, revision, "--format", "json"])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout or "[]")  # type: ignore[no-any-return]


def test_a_breaking_change_needs_a_new_version_and_the_changelog_to_say_so(tools: dict[str, str]) -> None:
    current = json.loads((DOCUMENTS / "openapi.json").read_text())["info"]["version"]
    released = max(RELEASED.glob("openapi-*.json"), key=lambda p: version(p.stem.removeprefix("openapi-")))
    released_version = released.stem.removeprefix("openapi-")
    assert version(current) >= version(released_version), "the API version went backwards"
    changes = breaking_changes(tools, released, DOCUMENTS / "openapi.json")
    if not changes:
        return
    assert version(current) > version(released_version), (
        f"{len(changes)} breaking changes against {released_version} without a new version: "
        + "; ".join(f"{c['id']} {c['operation']} {c['path']}" for c in changes[:5])
    )
    section = re.search(rf"^## {re.escape(current)}\n(.*?)(?=^## |\Z)", CHANGELOG.read_text(), re.M | re.S)
    assert section, f"docs/api-changelog.md has no section for {current}"
    assert "### Breaking" in section.group(1), f"the {current} section has no Breaking list"
    unexplained = {c["id"] for c in changes} - set(re.findall(r"`([a-z0-9-]+)`", section.group(1)))
    assert not unexplained, f"breaking changes the changelog does not name: {sorted(unexplained)}"


def test_oasdiff_reports_a_removed_operation_as_breaking(tools: dict[str, str], tmp_path: Path) -> None:
    """The check above can fail: removing a route is a breaking change oasdiff reports."""
    document = json.loads((DOCUMENTS / "openapi.json").read_text())
    del document["paths"]["/api/v2/gpus"]
    smaller = tmp_path / "openapi.json"
    smaller.write_text(json.dumps(document))
    ids = {c["id"] for c in breaking_changes(tools, DOCUMENTS / "openapi.json", smaller)}
    assert "api-path-removed-without-deprecation" in ids
