import tomllib
from collections import Counter
from importlib.resources import files

import pytest

from gpubroker.core.geo import CONTINENTS, continent


def _table() -> dict[str, list[str]]:
    data = tomllib.loads((files("gpubroker.core") / "continents.toml").read_text())
    return {name: entry["codes"] for name, entry in data.items()}


def test_every_code_appears_once() -> None:
    counts = Counter(code for codes in _table().values() for code in codes)
    assert [code for code, n in counts.items() if n > 1] == []
    assert all(len(code) == 2 and code.isupper() for code in counts)


def test_all_assigned_codes_are_present() -> None:
    assert sum(len(codes) for codes in _table().values()) == 249


def test_continent_names() -> None:
    assert CONTINENTS == (
        "africa",
        "antarctica",
        "asia",
        "europe",
        "north_america",
        "oceania",
        "south_america",
    )


@pytest.mark.parametrize(
    ("country", "expected"),
    [
        ("US", "north_america"),
        ("BR", "south_america"),
        ("DE", "europe"),
        ("JP", "asia"),
        ("AU", "oceania"),
        ("ZA", "africa"),
        ("AQ", "antarctica"),
        ("IS", "europe"),
        ("MX", "north_america"),
        ("PA", "north_america"),
        ("NZ", "oceania"),
        ("SG", "asia"),
        ("RU", "europe"),
        ("TR", "asia"),
        ("EG", "africa"),
        ("CY", "europe"),
        ("de", "europe"),
    ],
)
def test_spot_checks(country: str, expected: str) -> None:
    assert continent(country) == expected


@pytest.mark.parametrize("country", ["ZZ", "XK", "", None])
def test_unknown_or_missing_country_has_no_continent(country: str | None) -> None:
    assert continent(country) is None
