"""The hookspecs are the plugin author's reference: each must be documented and tested."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from gpubroker.core import hookspecs

ROOT = Path(__file__).resolve().parents[2]
HOOKS = [name for name, value in vars(hookspecs).items() if name.startswith("gpubroker_") and callable(value)]


def test_there_are_hooks() -> None:
    assert HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented(hook: str) -> None:
    function = getattr(hookspecs, hook)
    doc = inspect.getdoc(function) or ""
    for parameter in inspect.signature(function).parameters:
        assert f":param {parameter}:" in doc, f"{hook}: document parameter {parameter!r}"
    assert "versionadded" in doc, f"{hook}: say in which plugin API version it was added"
    assert hook in (ROOT / "CONTRIBUTING.md").read_text(), f"{hook}: describe it in CONTRIBUTING.md"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_exercised_by_a_test(hook: str) -> None:
    tests = [path for path in (ROOT / "tests").rglob("test_*.py") if path.name != Path(__file__).name]
    assert any(hook in path.read_text() for path in tests), f"{hook}: no test implements or calls it"
