"""Every command the README and docs/ show, run as written against an embedded gateway.

Each ``sh``/``bash`` code block is one script, run by bash with ``-e -o pipefail`` in a scratch
folder, with the gateway's URL in place of ``http://127.0.0.1:8000`` and in ``GPUBROKER_URL``;
``curl`` fails on an error answer; a comment ``# -> name`` says the output holds the JSON field
``name``. A block that cannot run here says why on the line before it
(``<!-- not run: reason -->``), so nothing is skipped by accident and the rest cannot rot.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.embedded import PASSWORD, Embedded, embedded_gateway

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOCUMENTED_URL = "http://127.0.0.1:8000"
SHELLS = ("sh", "bash")
FENCE = re.compile(r"^[ \t]*```(\w*)\n(.*?)^[ \t]*```", re.S | re.M)
NOT_RUN = re.compile(r"<!-- not run: (.+?) -->\s*$")
EXPECTS = re.compile(r"# -> (\w+)")
PRELUDE = 'curl() { command curl --silent --show-error --fail-with-body "$@"; }\n'


@dataclass(frozen=True)
class Block:
    document: Path
    line: int
    language: str
    text: str
    not_run: str | None

    @property
    def name(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def blocks() -> list[Block]:
    found = []
    for document in DOCUMENTS:
        text = document.read_text()
        for match in FENCE.finditer(text):
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            marker = NOT_RUN.search(before)
            line = text.count("\n", 0, match.start()) + 1
            found.append(Block(document, line, match[1], match[2], marker[1] if marker else None))
    return found


COMMANDS = [block for block in blocks() if block.language in SHELLS]
RUN = [block for block in COMMANDS if block.not_run is None]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded]:
    with embedded_gateway(tmp_path_factory.mktemp("docs") / "data") as running:
        yield running


@pytest.fixture(scope="module")
def reader(gateway: Embedded) -> dict[str, str]:
    """What the blocks take as given: a Pro user's password, access token and API key."""
    token, key = gateway.user("reader@example.com", "pro")
    return {"PASSWORD": PASSWORD, "ACCESS_TOKEN": token, "KEY": key}


def test_every_shell_block_runs_or_says_why_not() -> None:
    assert RUN, "no documented command found"
    for block in COMMANDS:
        assert block.not_run is None or len(block.not_run) > 10, f"{block.name}: say why it is not run"
    others = [block for block in blocks() if block.language not in SHELLS and block.not_run is not None]
    assert not others, f"only shell blocks are run: {[block.name for block in others]}"


@pytest.mark.parametrize("block", RUN, ids=lambda block: block.name)
def test_documented_commands_work(block: Block, gateway: Embedded, reader: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "tests").symlink_to(ROOT / "tests")  # for commands that name the repository's files
    script = PRELUDE + block.text.replace(DOCUMENTED_URL, gateway.url)
    result = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=tmp_path, env={**gateway.env, **reader, "GPUBROKER_URL": gateway.url}, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, f"{block.name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    assert "Traceback" not in result.stderr, result.stderr
    for field in EXPECTS.findall(block.text):
        assert f'"{field}"' in result.stdout, f"{block.name}: no {field!r} in the output"
