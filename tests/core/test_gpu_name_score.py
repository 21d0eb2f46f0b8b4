"""The resolver against several hundred real GPU names from public catalogues, at the goals."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpubroker.cli.main import main
from gpubroker.core.gpus.score import LabelError, read_labels, score, score_file

LABELS = Path(__file__).parents[1] / "data" / "gpu_names.csv"
GOALS = {"family": 0.99, "memory": 0.99, "form_factor": 0.97}


def test_the_set_is_hundreds_of_sourced_names() -> None:
    labels = read_labels(LABELS.read_text(encoding="utf-8"))
    assert len(labels) >= 500
    assert len({label.name for label in labels}) == len(labels)
    assert all(label.source.strip() for label in labels)
    assert sum(label.memory_gb is not None for label in labels) >= 100
    assert sum(label.form_factor is not None for label in labels) >= 100


def test_the_resolver_meets_the_goals() -> None:
    result = score_file(LABELS)
    for what, goal in GOALS.items():
        counts = getattr(result, what)
        assert result.share(counts) >= goal, (what, counts, [(label.name, kind) for label, _, kind in result.misses])


def test_the_command_prints_the_scores_and_each_miss(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gpus", "score", str(LABELS)]) == 0
    out = capsys.readouterr().out
    result = score_file(LABELS)
    for line, what in (
        ("family", result.family),
        ("stated memory", result.memory),
        ("stated form factor", result.form_factor),
    ):
        assert any(
            row.startswith(line) and f"{what[0]} / {what[1]}" in " ".join(row.split()) for row in out.splitlines()
        )
    assert sum(row.startswith("miss (") for row in out.splitlines()) == len(result.misses)


def test_a_wrong_answer_counts_against_the_score() -> None:
    labels = read_labels(
        "name,family,memory_gb,form_factor,source\n"
        "NVIDIA A100-SXM4-80GB,A100,80,SXM,test\n"
        "NVIDIA A100-SXM4-80GB,H100,40,PCIE,test\n"
        "Apple M2 Ultra,,,,test\n"
    )
    result = score(labels)
    assert (result.family, result.memory, result.form_factor) == ((2, 3), (1, 2), (1, 2))
    assert [kind for _, _, kind in result.misses] == ["family", "memory", "form factor"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,family\nA100,A100\n", "the header must be"),
        ("name,family,memory_gb,form_factor,source\nA100,A100,80\n", "line 2: expected 5 fields"),
        ("name,family,memory_gb,form_factor,source\nA100,Voodoo,,,x\n", "family 'Voodoo' is not"),
        ("name,family,memory_gb,form_factor,source\nA100,A100,eighty,,x\n", "memory_gb must be"),
        ("# comment\nname,family,memory_gb,form_factor,source\nA100,A100,,OAM,x\n", "line 3: form_factor must be"),
        ("name,family,memory_gb,form_factor,source\nA100,A100,,,\n", "name and source must not be blank"),
    ],
)
def test_a_malformed_set_is_named(text: str, message: str) -> None:
    with pytest.raises(LabelError, match=message):
        read_labels(text)


def test_the_command_names_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("name,family\n")
    assert main(["gpus", "score", str(bad)]) == 2
    assert "the header must be" in capsys.readouterr().err
    assert main(["gpus", "score", str(tmp_path / "missing.csv")]) == 2
    assert "No such file" in capsys.readouterr().err
