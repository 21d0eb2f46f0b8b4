"""Make the screenshots the README shows (docs/screenshots/): the web page at desktop and phone
width in headless Chromium, and `gpubroker offers` and `gpubroker watch` as a terminal shows them
(rendered to SVG), all against an embedded gateway with Vast.ai replayed and Lambda degraded.

Run it with `scripts/screenshots` after `scripts/setup` and `scripts/browser`.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.text import Text

from tests.embedded import BIN, Embedded, change_price, clean_environment, copy_recordings, replayed_gateway
from tests.page.browser import DESKTOP, PHONE, chromium

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
TERMINAL = {"COLUMNS": "150", "LINES": "40", "TERM": "xterm-256color", "FORCE_COLOR": "1"}
REDRAW = re.compile(r"(?:\x1b\[2K\x1b\[1A)+\x1b\[2K")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        recordings = copy_recordings("gpubroker_vastai", Path(scratch) / "recordings")
        with replayed_gateway(recordings, Path(scratch) / "data") as gateway:
            key = gateway.user("screens@example.com", "pro")[1]
            page(gateway, key, DESKTOP, "page-desktop.png")
            page(gateway, key, PHONE, "page-phone.png")
            terminal(gateway, key)
            watch(gateway, key, recordings)
    for path in sorted(OUT.iterdir()):
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size} bytes")
    return 0


def page(gateway: Embedded, key: str, size: tuple[int, int], name: str) -> None:
    with chromium(size) as browser:
        browser.get(gateway.url + "/")
        browser.execute_script("localStorage.setItem('gpubroker.apiKey', arguments[0])", key)
        browser.get(gateway.url + "/")
        gpu = browser.find_element("name", "gpu")
        gpu.send_keys("H100\n")
        deadline = time.monotonic() + 10
        while not browser.find_elements("css selector", "#history svg") and time.monotonic() < deadline:
            time.sleep(0.1)
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(size[0], min(height + 100, 2400))
        browser.save_screenshot(str(OUT / name))


def terminal(gateway: Embedded, key: str) -> None:
    shown = subprocess.run(
        [BIN / "gpubroker", "offers", "H100", "--max-price", "3", "--limit", "12"],
        env=clean_environment(GPUBROKER_URL=gateway.url, GPUBROKER_API_KEY=key, **TERMINAL),
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    save_svg("$ gpubroker offers H100 --max-price 3 --limit 12\n" + shown.stdout, "offers.svg", "gpubroker offers")


def watch(gateway: Embedded, key: str, recordings: Path) -> None:
    controller, tty = pty.openpty()
    env = clean_environment(GPUBROKER_URL=gateway.url, GPUBROKER_API_KEY=key, **TERMINAL)
    watcher = subprocess.Popen([BIN / "gpubroker", "watch", "H100", "--max-price", "2.5"],
                               stdin=tty, stdout=tty, stderr=tty, env=env)  # fmt: skip
    os.close(tty)
    text = read(controller, 4)
    change_price(recordings, "H100 SXM", 1, 0.85)
    text += read(controller, 3)
    watcher.terminate()
    watcher.wait(10)
    os.close(controller)
    frame = REDRAW.split(text)[-1].replace("\r", "")
    save_svg("$ gpubroker watch H100 --max-price 2.5\n" + frame, "watch.svg", "gpubroker watch")


def read(controller: int, seconds: float) -> str:
    text, deadline = "", time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        if select.select([controller], [], [], remaining)[0]:
            text += os.read(controller, 65536).decode("utf-8", "replace")
    return text


def save_svg(ansi: str, name: str, title: str) -> None:
    console = Console(record=True, width=int(TERMINAL["COLUMNS"]), force_terminal=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(Text.from_ansi(ansi), soft_wrap=False)
    console.save_svg(str(OUT / name), title=title)


if __name__ == "__main__":
    sys.exit(main())
