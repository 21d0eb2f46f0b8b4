"""The drift probe against the replay server: recordings as they are, and an answer that drifted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from gpubroker.core.drift import Difference, probe, shape, shape_differences
from gpubroker.core.testkit.replay import ReplayServer
from gpubroker_vastai.adapter import VastAdapter

BIN = Path(sys.executable).parent / "gpubroker"
NO_DRIFT = "no drift from the schemas, the recordings or the GPU catalogue"


def drifted_vast_recordings(folder: Path) -> Path:
    """Vast's recordings where the first offer renamed a field, retyped another and named an
    unknown GPU, the way a provider's answer drifts under a plugin."""
    assert VastAdapter.recordings is not None
    for item in VastAdapter.recordings.iterdir():
        if item.is_file():
            (folder / item.name).write_bytes(item.read_bytes())
    body = orjson.loads((folder / "bundles.json").read_bytes())
    first = body["offers"][0]
    first["gpu_model"] = first.pop("gpu_frac")  # a field renamed
    first["num_gpus"] = str(first["num_gpus"])  # a number that became a string
    body["offers"][1]["gpu_name"] = "Voodoo 5 6000"  # a GPU the catalogue does not know
    (folder / "bundles.json").write_bytes(orjson.dumps(body))
    return folder


@pytest.mark.asyncio
async def test_the_recordings_themselves_do_not_drift() -> None:
    assert VastAdapter.recordings is not None
    with ReplayServer(VastAdapter.recordings) as server:
        report = await probe(VastAdapter, base_url=server.url)
    assert (report.answers, report.drifted) == (1, False)
    assert report.offers == 44
    [line] = report.lines()
    assert line == f"vastai: 1 answer(s) from {server.url}, 44 offer(s): " + NO_DRIFT


@pytest.mark.asyncio
async def test_a_drifted_answer_is_reported_field_by_field(tmp_path: Path) -> None:
    with ReplayServer(drifted_vast_recordings(tmp_path)) as server:
        report = await probe(VastAdapter, base_url=server.url)
    answer = "POST /api/v0/bundles/"
    assert report.drifted
    assert set(report.differences) >= {
        Difference("schema", "new", answer, "/offers/0/gpu_model", "a field the reference does not define"),
        Difference("schema", "retyped", answer, "/offers/0/num_gpus", "string where the reference says integer"),
        Difference("recording", "new", answer, "/offers/[]/gpu_model", "in the live answer, not in the recording"),
        Difference("recording", "retyped", answer, "/offers/[]/num_gpus",
                   "recorded as number, answered as number/string"),
        Difference("catalogue", "unknown_gpu", "", "", "GPU name 'Voodoo 5 6000' is not in the catalogue"),
    }  # fmt: skip
    assert not any(d.kind == "missing" for d in report.differences)  # other offers still have gpu_frac
    assert report.to_dict()["drifted"] is True


def test_shapes_fold_array_positions_and_ignore_nulls() -> None:
    recorded = shape({"items": [{"a": 1, "b": "x"}, {"a": 2, "b": None}]})
    assert recorded == {"/items": {"array"}, "/items/[]": {"object"}, "/items/[]/a": {"integer"},
                        "/items/[]/b": {"string", "null"}}  # fmt: skip
    live = shape({"items": [{"a": 1.5, "b": None, "c": []}]})
    assert shape_differences("GET /x", recorded, live) == [
        Difference("recording", "new", "GET /x", "/items/[]/c", "in the live answer, not in the recording")
    ]
    assert shape_differences("GET /x", live, recorded)[0].kind == "missing"


def test_the_keys_of_maps_are_values_not_fields() -> None:
    recorded = shape({"types": {"gpu_1x_a10": {"price": 1}}}, frozenset({"/types"}))
    live = shape({"types": {"gpu_8x_b200": {"price": 40}}}, frozenset({"/types"}))
    assert recorded == live == {"/types": {"object"}, "/types/*": {"object"}, "/types/*/price": {"integer"}}


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GPUBROKER_")}
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=60, env={**base, **(env or {})})


def test_the_command_exits_1_on_drift_and_0_without(tmp_path: Path) -> None:
    with ReplayServer(drifted_vast_recordings(tmp_path)) as server:
        drifted = run("plugins", "probe", "vastai", "--base-url", server.url)
        as_json = run("plugins", "probe", "vastai", "--base-url", server.url, "--json")
    assert drifted.returncode == 1, drifted.stderr
    assert "schema: new POST /api/v0/bundles/ /offers/0/gpu_model" in drifted.stdout
    assert "catalogue: unknown_gpu: GPU name 'Voodoo 5 6000' is not in the catalogue" in drifted.stdout
    assert as_json.returncode == 1 and orjson.loads(as_json.stdout)["drifted"] is True
    assert VastAdapter.recordings is not None
    with ReplayServer(VastAdapter.recordings) as server:  # the base URL can also come from the settings
        clean = run("plugins", "probe", "vastai", env={"GPUBROKER_PROVIDER_BASE_URLS": f'{{"vastai": "{server.url}"}}'})
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "no drift" in clean.stdout


def test_without_network_the_error_is_one_line() -> None:
    result = run("plugins", "probe", "vastai", "--base-url", "http://127.0.0.1:9", "--timeout", "2")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("gpubroker: error: vastai: POST /api/v0/bundles/ failed")


def test_without_credentials_the_error_names_what_to_set() -> None:
    result = run("plugins", "probe", "gcp")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "gcp needs credentials to be probed: api_key (set GPUBROKER_SECRET_GCP_API_KEY" in line


def test_an_unknown_provider_is_named() -> None:
    result = run("plugins", "probe", "nosuch")
    assert result.returncode == 2 and "no provider named 'nosuch'" in result.stderr
