"""Fixtures of the browser tests: a real app (temporary SQLite database, real worker) served by
uvicorn on loopback, and Debian's headless chromium driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.harness import (
    CHROMIUM,
    SCREENSHOTS,
    LiveServer,
    bench_spec,
    launch_chromium,
    write_bench_table,
)


def pytest_collection_modifyitems(config, items):
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is absent: apt-get install -y chromium "
                                   "(.ci/run installs it)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


class Live:
    """One app + database: submit studies over the API, run them with a real worker."""

    def __init__(self, url: str, db: Any, settings: Any):
        self.url = url
        self.db = db
        self.settings = settings
        self.http = httpx.Client(base_url=url + "/api/v1", timeout=30)

    def submit(self, spec: dict[str, Any]) -> dict[str, Any]:
        res = self.http.post("/studies", json=spec)
        assert res.status_code == 201, res.text
        return res.json()

    def run_queue(self) -> None:
        """Run every queued study to its end with an in-process worker."""
        from service.interfaces.worker import Worker

        Worker(self.db, self.settings, worker_id="test-worker").run_forever(exit_when_idle=True)

    def get(self, path: str, **params: Any) -> Any:
        res = self.http.get(path, params=params)
        assert res.status_code == 200, res.text
        return res.json()

    def spec(self, name: str, **kw: Any) -> dict[str, Any]:
        return bench_spec(name, **kw)


@pytest.fixture(scope="session")
def bench_data(tmp_path_factory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("viewer-data")
    write_bench_table(root / "bench.csv", holes=True)
    old = os.environ.get("PARETONAS_DATA_DIRS")
    os.environ["PARETONAS_DATA_DIRS"] = str(root)
    yield root
    if old is None:
        os.environ.pop("PARETONAS_DATA_DIRS", None)
    else:
        os.environ["PARETONAS_DATA_DIRS"] = old


@pytest.fixture
def live(tmp_path, bench_data) -> Iterator[Live]:
    from service.interfaces.api.app import create_app
    from service.persistence.db import Database
    from service.settings import Settings

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'viewer.db'}", poll_seconds=0.1,
                        heartbeat_seconds=0.5)
    db = Database(settings.database_url)
    app = create_app(settings, db=db)
    with LiveServer(app) as server:
        live = Live(server.url, db, settings)
        yield live
        live.http.close()
    db.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = launch_chromium(pw)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser) -> Iterator[Any]:
    """A 1280x800 page that fails the test on any JavaScript error or failed request."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    pg.on("console", lambda msg: errors.append(f"console: {msg.text}")
          if msg.type == "error" else None)
    pg.on("requestfailed", lambda req: errors.append(f"request failed: {req.url}"))
    pg.js_errors = errors
    yield pg
    context.close()
    assert not errors, errors


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def wait_ready(page: Any, timeout_ms: float = 45_000) -> None:
    page.wait_for_selector("body[data-ready='1']", state="attached", timeout=timeout_ms)
