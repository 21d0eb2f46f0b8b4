"""The contract tests: the standard tools on the committed documents, schemathesis against a
running gateway, and a client generated from the served document."""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run this folder's integration tests after the others, so that the background install of
    their tools (scripts/api-tools/install, started by scripts/test) overlaps the rest."""
    here = Path(__file__).parent

    def last(item: pytest.Item) -> bool:
        return item.path.is_relative_to(here) and item.get_closest_marker("integration") is not None

    items.sort(key=last)
