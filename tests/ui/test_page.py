"""The live page in headless Chromium (Debian's chromium + chromium-driver, driven by selenium).

Real broker, real ``tickerwire up`` on the sample feed, an API key configured: the page asks for
the key once, streams an answer with numbered citations that open the cited document, shows the
freshness strip and the movers, and a document produced while the page is open appears in the
live feed without a reload. The screenshot is saved to docs/page.png for the README.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.support import TICKERWIRE, Worker, wait_until
from tests.kafka_support import free_port
from tests.secret_scan import register_secret

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "deploy" / "sample"
SCREENSHOT = REPO / "docs" / "page.png"
KEY = register_secret("ui-test-key")
QUESTION = "What revenue did NVIDIA report for the third quarter of fiscal 2027?"

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.e2e,
    pytest.mark.ui,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
    ),
]

if CHROMEDRIVER.exists():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait


def _env(bootstrap: str, data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TICKERWIRE_KAFKA_BOOTSTRAP": bootstrap,
        "TICKERWIRE_DATA_DIR": str(data_dir),
    }


def _produce(bootstrap: str, data_dir: Path, *paths: Path) -> None:
    proc = subprocess.run(
        [TICKERWIRE, "produce", *map(str, paths)],
        env=_env(bootstrap, data_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _news(slug: str, title: str) -> dict[str, object]:
    return {
        "schema": "raw-document/v1",
        "doc_id": f"news:{slug}:{int(time.time() * 1000)}",
        "op": "upsert",
        "version": 1,
        "source": "ui-test",
        "doc_type": "news",
        "title": title,
        "body": f"{title}. Acme Corp said so on Friday.",
        "content_type": "text/plain",
        "published_at": "2026-12-04T12:00:00Z",
        "tickers": ["ACME"],
    }


@pytest.fixture(scope="module")
def worker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    data_dir = tmp_path_factory.mktemp("ui-worker")
    w = Worker(
        bootstrap=kafka_bootstrap,
        data_dir=data_dir,
        app_id=f"ui-{int(time.time() * 1000)}",
        http_port=free_port(),
        env={"TICKERWIRE_API_KEYS": KEY},
    )
    w.client.headers["X-API-Key"] = KEY
    w.start(timeout=180)
    try:
        _produce(kafka_bootstrap, data_dir, SAMPLE)
        last = {"points": -1, "stable": 0}

        def caught_up() -> bool:
            status = w.client.get("/v1/status").json()
            lag = status["lag"]
            settled = lag and all(v == 0 for v in lag.values())
            same = status["points"] == last["points"]
            last["stable"] = last["stable"] + 1 if same and status["points"] > 0 else 0
            last["points"] = status["points"]
            return bool(settled) and last["stable"] >= 3

        wait_until(caught_up, 300, f"the sample feed to be indexed (log: {w.log_path})", 1.0)
        yield w
    finally:
        if w.proc is not None:
            w.stop()
        w.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1440,1080",
        "--lang=en-US",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: WebDriver, seconds: float = 60) -> WebDriverWait[WebDriver]:
    return WebDriverWait(driver, seconds, poll_frequency=0.2)


def test_page_asks_streams_cites_and_follows_the_live_feed(
    worker: Worker, browser: WebDriver, kafka_bootstrap: str, tmp_path: Path
) -> None:
    try:
        _exercise_page(worker, browser, kafka_bootstrap, tmp_path)
    except BaseException:
        browser.save_screenshot(str(tmp_path / "failure.png"))  # for whoever debugs it
        print(f"screenshot of the failure: {tmp_path / 'failure.png'}")
        raise


def _exercise_page(
    worker: Worker, browser: WebDriver, kafka_bootstrap: str, tmp_path: Path
) -> None:
    base = f"http://127.0.0.1:{worker.http_port}"
    browser.get(f"{base}/")

    # The key is asked once (the API has keys) and kept for the session.
    key_input = _wait(browser, 20).until(ec.visibility_of_element_located((By.ID, "key-input")))
    key_input.send_keys(KEY)
    browser.find_element(By.ID, "key-save").click()
    _wait(browser, 20).until(ec.invisibility_of_element_located((By.ID, "key-dialog")))
    assert browser.execute_script("return sessionStorage.getItem('tickerwire.apiKey')") == KEY

    # Freshness strip: watermark age and each stage's lag, from /v1/status.
    _wait(browser, 30).until(
        lambda d: (
            "ago" in d.find_element(By.ID, "fresh-watermark").text
            and "index lag" in d.find_element(By.ID, "fresh-lag").text
        )
    )
    # Documents produced while the page is open appear in the live feed without a reload; their
    # text is shown as text, never run as markup.
    marker = browser.execute_script("window.__noReload = 1; return window.__noReload")
    hostile = _news("ui-markup", "<img src=x onerror=window.pwned=1> markup stays text")
    friendly = _news("ui-dividend", "Acme raises its quarterly dividend 8% to $0.54")
    for i, doc in enumerate((hostile, friendly)):
        feed_file = tmp_path / f"doc-{i}.jsonl"
        feed_file.write_text(json.dumps(doc) + "\n")
        _produce(kafka_bootstrap, worker.data_dir, feed_file)
        item = _wait(browser, 90).until(
            ec.presence_of_element_located(
                (By.CSS_SELECTOR, f'#feed li[data-doc-id="{doc["doc_id"]}"]')
            )
        )
        assert str(doc["title"]) in item.text
    assert browser.execute_script("return window.__noReload") == marker  # no reload happened
    assert browser.execute_script("return window.pwned === undefined")

    # Ask with the keyboard: the answer streams in, then cites its sources.
    question = browser.find_element(By.ID, "question")
    question.send_keys(QUESTION)
    question.send_keys("\n")
    _wait(browser, 120).until(
        lambda d: (
            d.find_element(By.ID, "answer").get_attribute("aria-busy") == "false"
            and d.find_elements(By.CSS_SELECTOR, "#citations li")
        )
    )
    answer = browser.find_element(By.ID, "answer-text").text
    assert "$68.4 billion" in answer, answer  # the sample 10-Q's revenue figure
    streamed = browser.find_element(By.ID, "answer").get_attribute("data-tokens")
    assert int(streamed or 0) > 1, streamed  # the answer arrived in pieces, then the final
    assert browser.find_elements(By.CSS_SELECTOR, "#answer-text button.cite"), answer
    assert browser.find_element(By.ID, "answer-meta").text.startswith("grounded")
    citations = browser.find_elements(By.CSS_SELECTOR, "#citations li")
    assert any("NVIDIA" in c.text for c in citations), [c.text for c in citations]

    # What query understanding applied is shown with a one-click remove, which asks again with
    # understand: false (only once query understanding recognises something in the question).
    understood = browser.find_element(By.ID, "understood")
    if understood.is_displayed():
        assert "NVDA" in understood.text or "NVIDIA" in understood.text, understood.text
        browser.find_element(By.ID, "understood-remove").click()
        _wait(browser, 120).until(
            lambda d: (
                d.find_element(By.ID, "answer").get_attribute("aria-busy") == "false"
                and not d.find_element(By.ID, "understood").is_displayed()
                and d.find_elements(By.CSS_SELECTOR, "#citations li")
            )
        )

    # A numbered citation opens the cited document, its chunks from /v1/documents/{id}.
    browser.find_element(By.CSS_SELECTOR, "#answer-text button.cite").click()
    _wait(browser, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#doc-chunks .chunk.cited"))
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(tmp_path / "document.png"))
    browser.find_element(By.CSS_SELECTOR, "#doc-dialog button").click()
    _wait(browser, 10).until(ec.invisibility_of_element_located((By.ID, "doc-dialog")))

    # Feedback: thumbs up on the answer, and one citation marked wrong (POST /v1/feedback).
    browser.find_element(By.ID, "thumb-up").click()
    _wait(browser, 20).until(lambda d: "rated up" in d.find_element(By.ID, "feedback-state").text)
    browser.find_element(By.CSS_SELECTOR, "#citations li .wrong-citation").click()
    _wait(browser, 20).until(
        lambda d: "marked wrong" in d.find_element(By.ID, "feedback-state").text
    )

    # Movers: the sample's market statistics, biggest fallers first.
    _wait(browser, 30).until(lambda d: "%" in d.find_element(By.ID, "movers").text)

    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 10_000
    shutil.copy(SCREENSHOT, tmp_path / "page.png")
