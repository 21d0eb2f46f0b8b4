"""The web page at ``/`` in headless Chromium against a running embedded gateway
(``replayed_gateway``: plans enforced, Vast.ai live from a replay server polled every second,
Lambda degraded on its snapshot): first load within 150 KB (its time is bench/page_load.py's),
filters, re-ranking as a slider moves, a live price change, the degraded provider, keyboard,
labels and a phone's width."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from gpubroker_client import Client
from tests.embedded import Embedded, change_price, copy_recordings, replayed_gateway
from tests.page.browser import PHONE, chromium, missing

MAX_FIRST_LOAD_BYTES = 150 * 1024
PAINT_CEILING_MS = 5000
"""Far above the page's usual paint (bench/page_load.py measures it, docs/benchmarks.md): a test
on a shared, loaded machine catches only a page that stopped painting promptly, not a slow one."""


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_recordings("gpubroker_vastai", tmp_path_factory.mktemp("vastai") / "recordings")


@pytest.fixture(scope="module")
def gateway(recordings: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded]:
    why = missing()
    if why is not None:
        pytest.fail(why)
    with replayed_gateway(recordings, tmp_path_factory.mktemp("page") / "data") as running:
        yield running


@pytest.fixture(scope="module")
def pro_key(gateway: Embedded) -> str:
    return gateway.user("pro@page.example.com", "pro")[1]


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with chromium() as driver:
        yield driver


def wait(browser: WebDriver, condition, timeout_s: float = 10.0):  # type: ignore[no-untyped-def]
    try:
        return WebDriverWait(browser, timeout_s, poll_frequency=0.05).until(lambda _: condition())
    except TimeoutException:
        status = browser.find_element(By.ID, "status").text
        raise AssertionError(f"not shown in {timeout_s}s; status: {status!r}; rows: {rows(browser)[:3]}") from None


def rows(browser: WebDriver) -> list[list[str]]:
    script = "return [...document.querySelectorAll('#offers tbody tr')].map(r => [...r.cells].map(c => c.textContent))"
    return browser.execute_script(script)  # type: ignore[no-any-return]


def open_page(browser: WebDriver, gateway: Embedded, key: str | None) -> None:
    """A fresh page (no form state kept), signed in with ``key`` or anonymous."""
    browser.get(gateway.url + "/")
    browser.execute_script(
        "const key = arguments[0];"
        "key ? localStorage.setItem('gpubroker.apiKey', key) : localStorage.removeItem('gpubroker.apiKey')",
        key,
    )
    browser.get("about:blank")
    browser.get(gateway.url + "/")
    wait(browser, lambda: rows(browser) or "error" in browser.find_element(By.ID, "status").get_attribute("class"))


def test_first_load_is_small_and_fast_for_an_anonymous_visitor(gateway: Embedded) -> None:
    with chromium() as fresh:  # a cold cache: everything is transferred
        fresh.get(gateway.url + "/")
        wait(fresh, lambda: rows(fresh))
        timing = fresh.execute_script(
            """
            const navigation = performance.getEntriesByType('navigation')[0];
            const resources = performance.getEntriesByType('resource');
            const paint = performance.getEntriesByName('first-contentful-paint')[0];
            return {bytes: navigation.transferSize + resources.reduce((sum, r) => sum + r.transferSize, 0),
                    paint: paint ? paint.startTime : null,
                    names: resources.map(r => r.name)};
            """
        )
        table_ms = fresh.execute_script("return performance.now()")
    assert any("/api/v2/providers" in name for name in timing["names"])
    assert 0 < timing["bytes"] <= MAX_FIRST_LOAD_BYTES, timing
    assert timing["paint"] is not None and timing["paint"] < PAINT_CEILING_MS, timing
    assert table_ms < 3 * PAINT_CEILING_MS  # offers on screen soon after the first paint
    print(f"first load: {timing['bytes']} bytes, first contentful paint {timing['paint']:.0f} ms")


def test_basic_filters_work_anonymously_and_the_rest_name_the_plan(browser: WebDriver, gateway: Embedded) -> None:
    open_page(browser, gateway, None)
    browser.find_element(By.NAME, "gpu").send_keys("H100")
    browser.find_element(By.NAME, "max_price").send_keys("2.5" + Keys.ENTER)  # the keyboard submits
    wait(browser, lambda: rows(browser) and all(r[2] == "H100" for r in rows(browser)))
    assert all(float(r[0].lstrip("$")) <= 2.5 for r in rows(browser))
    history = browser.find_element(By.ID, "history").text
    assert "pro plan" in history  # price history is a Pro feature: the page says so
    browser.find_element(By.NAME, "min_gpus").send_keys("2" + Keys.ENTER)
    status = browser.find_element(By.ID, "status")
    wait(browser, lambda: "min_gpus" in status.text)
    assert "pro plan" in status.text and "add an API key" in status.text


def test_a_pro_user_reranks_as_a_slider_moves(browser: WebDriver, gateway: Embedded, pro_key: str) -> None:
    open_page(browser, gateway, pro_key)
    assert not browser.find_element(By.ID, "weights").is_displayed()  # only for TOPSIS
    Select(browser.find_element(By.NAME, "sort")).select_by_value("topsis")
    assert browser.find_element(By.ID, "weights").is_displayed()
    browser.find_element(By.NAME, "gpu").send_keys("H100" + Keys.ENTER)
    wait(browser, lambda: rows(browser) and all(r[2] == "H100" for r in rows(browser)))
    for name in ("w_performance", "w_memory", "w_availability"):
        browser.find_element(By.NAME, name).send_keys(Keys.HOME)  # sliders move by keyboard
    price = browser.find_element(By.NAME, "w_price")
    price.send_keys(Keys.END)
    assert price.find_element(By.XPATH, "following-sibling::output").text == "1"

    def cheapest_first() -> bool:
        prices = [float(r[0].lstrip("$").replace(",", "")) for r in rows(browser) if r[0] != "\u2013"]
        return bool(prices) and prices[0] == min(prices)

    wait(browser, cheapest_first)
    assert browser.find_element(By.CSS_SELECTOR, "#history svg")  # the chart for the chosen GPU


def test_a_live_price_change_flashes_within_two_seconds(
    browser: WebDriver, gateway: Embedded, pro_key: str, recordings: Path
) -> None:
    open_page(browser, gateway, pro_key)
    browser.find_element(By.NAME, "gpu").send_keys("H100" + Keys.ENTER)
    wait(browser, lambda: rows(browser) and all(r[2] == "H100" for r in rows(browser)))
    wait(browser, lambda: browser.find_element(By.ID, "live").is_displayed())  # the stream is connected
    changed = change_price(recordings, "H100 NVL", 1, 0.8)
    changed_at = time.monotonic()
    selector = "#offers tbody tr.flash.down"
    flashed = wait(browser, lambda: browser.find_elements(By.CSS_SELECTOR, selector), timeout_s=10)
    elapsed = time.monotonic() - changed_at
    # The worker polls every second, so it publishes at most ~1.1 s after the change.
    assert elapsed < 1.2 + 2.0, f"the change showed {elapsed:.1f}s after it was made"
    with Client(gateway.url, pro_key) as client:
        [offer] = [o for o in client.iter_offers(gpu="H100") if o.provider_offer_id.startswith(str(changed))]
    assert [row.get_attribute("data-id") for row in flashed] == [offer.id]
    assert flashed[0].find_element(By.TAG_NAME, "td").text == f"${offer.price_per_hour:.2f}"


def test_the_health_strip_shows_the_degraded_provider(browser: WebDriver, gateway: Embedded) -> None:
    open_page(browser, gateway, None)
    degraded = wait(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#health li.degraded"))
    assert [item.get_attribute("data-provider") for item in degraded] == ["lambdalabs"]
    assert "stale" in degraded[0].text and "snapshot" in degraded[0].text
    assert browser.find_element(By.CSS_SELECTOR, "#health li.healthy").get_attribute("data-provider") == "vastai"


def test_every_control_is_labelled_and_a_phone_needs_no_sideways_scroll(gateway: Embedded) -> None:
    with chromium(PHONE) as phone:
        phone.get(gateway.url + "/")
        wait(phone, lambda: rows(phone))
        unlabelled = phone.execute_script(
            "return [...document.querySelectorAll('input, select, button')]"
            ".filter(c => c.type !== 'submit' && c.type !== 'button' && c.labels.length === 0).map(c => c.name || c.id)"
        )
        assert unlabelled == []
        width = phone.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], width
