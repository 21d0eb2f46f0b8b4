"""First load of the web page at `/` against the gateway's own browsable API page
(`/api/v2/docs`, Swagger UI) as the baseline: bytes transferred (cold cache) and first
contentful paint, in headless Debian chromium, over several fresh browsers. Goal: the page under
150 KB and 1 s.

Run: `PYTHONPATH=. .venv/bin/python bench/page_load.py [--runs 5]` (after `scripts/browser`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.embedded import embedded_gateway
from tests.page.browser import chromium

MEASURE = """
const navigation = performance.getEntriesByType('navigation')[0];
const paint = performance.getEntriesByName('first-contentful-paint')[0];
return {bytes: navigation.transferSize + performance.getEntriesByType('resource')
          .reduce((sum, r) => sum + r.transferSize, 0),
        paint: paint ? paint.startTime : null};
"""


def measure(url: str, ready: str) -> tuple[int, float]:
    with chromium() as browser:  # a new profile each time: a cold cache
        browser.get(url)
        deadline = time.monotonic() + 15
        while not browser.execute_script(ready) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # let late resources finish before counting bytes
        result = browser.execute_script(MEASURE)
    return int(result["bytes"]), float(result["paint"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    pages = {
        "/ (the page: offers, filters, health, live)": (
            "/",
            "return document.querySelectorAll('#offers tbody tr').length > 0",
        ),
        "/api/v2/docs (Swagger UI, baseline)": ("/api/v2/docs", "return !!document.querySelector('.opblock')"),
    }
    with tempfile.TemporaryDirectory() as scratch, embedded_gateway(Path(scratch) / "data") as gateway:
        print(f"{'page':<46} {'KB transferred':>15} {'first paint ms (median)':>24} {'max ms':>8}")
        for name, (path, ready) in pages.items():
            runs = [measure(gateway.url + path, ready) for _ in range(args.runs)]
            kb = statistics.median(r[0] for r in runs) / 1024
            paints = [r[1] for r in runs]
            print(f"{name:<46} {kb:>15.1f} {statistics.median(paints):>24.0f} {max(paints):>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
