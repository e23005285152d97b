"""Browser fixtures: the app served by `streamlit run` on a free port with the demo loaded into a
fresh DATA_DIR, and Debian's Chromium driven by Playwright (never a browser Playwright downloads)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from curation.embeddings.tasks import abandon_task

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT_S = 90
SCREENSHOTS = REPO / "docs" / "screenshots"  # the README's pictures: tracked files
VIEWPORT = {"width": 1400, "height": 900}


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(
            f"CI must run the browser tests: {CHROMIUM} is missing (install Debian's chromium package)"
        )
    pytest.skip(
        f"no {CHROMIUM}: install Debian's chromium package to run the browser tests "
        "(scripts/ensure-chromium.sh does when run as root)"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_app(data_dir: Path, **env_overrides: str) -> Iterator[str]:
    """`streamlit run app.py` on a free 127.0.0.1 port with DATA_DIR=data_dir and these environment
    overrides; yields the base URL once the health endpoint answers, and stops the server after."""
    port = _free_port()
    env = dict(os.environ)
    env.update(DATA_DIR=str(data_dir), **env_overrides)
    log_path = data_dir / "streamlit.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
             "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"streamlit exited with {process.returncode}:\n{log_path.read_text(errors='replace')}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not answer on {url} within {START_TIMEOUT_S}s:\n"
                            f"{log_path.read_text(errors='replace')}")
            time.sleep(0.25)  # polling the health endpoint, not waiting on the page
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        # Background tasks (preflights, embedding jobs) run in their own sessions and outlive the server
        # by design; nobody will read these, so they must not take the cores from the tests that follow.
        for task in (data_dir / "jobs").glob("*.json"):
            abandon_task(task)


def server_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The DATA_DIR of the session's served demo app (`app_url`), for tests that set up state through
    the core before they click."""
    found = {p.resolve() for p in tmp_path_factory.getbasetemp().glob("e2e-data*") if (p / "streamlit.log").exists()}
    assert len(found) == 1, found
    return found.pop()


@pytest.fixture(scope="session")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a running app with the demo data loaded (LOAD_DEMO) into an empty DATA_DIR."""
    _require_chromium()
    # Empty values count as unset and shadow any developer .env: the default SQLite under DATA_DIR,
    # and no ADMIN_USERNAME, whose account would take the demo admin's name.
    with serve_app(tmp_path_factory.mktemp("e2e-data"), LOAD_DEMO="true", DATABASE_URL="", ADMIN_USERNAME="",
                   ADMIN_PASSWORD="") as url:
        yield url


def screenshots_wanted() -> bool:
    """True only under `make screenshots` (E2E_SCREENSHOTS=1): `make test` must leave tracked files alone."""
    return os.environ.get("E2E_SCREENSHOTS") == "1"


def save_screenshot(page: Any, name: str, **options: Any) -> Path | None:
    """Write docs/screenshots/`name` from `page` when screenshots are wanted; otherwise write nothing.
    Returns the path written, or None."""
    if not screenshots_wanted():
        return None
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), **options)
    return path


def log_in(page: Any, username: str, password: str) -> None:
    page.goto("/")
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def open_page(page: Any, project: str, link: str) -> Any:
    """Pick `project` in the sidebar, follow the navigation `link`; returns the main area."""
    from playwright.sync_api import expect

    sidebar = page.get_by_test_id("stSidebar")
    picker = sidebar.get_by_role("combobox", name="Project")
    picker.click()
    page.get_by_role("option", name=project).click()
    expect(picker).to_have_value(project)
    sidebar.get_by_role("link", name=link).click()
    return page.get_by_test_id("stMain")


def select_tab(main: Any, name: str, shows: Any, attempts: int = 3) -> None:
    """Select the tab `name` and wait until `shows` (a locator inside it) is visible. A keyed tab bar
    reruns the script on a change, and a rerun still in flight can bring the previous tab back:
    click again until the selection holds."""
    from playwright.sync_api import expect

    for attempt in range(attempts):
        main.get_by_role("tab", name=name).click()
        try:
            expect(shows).to_be_visible(timeout=20_000)
            return
        except AssertionError:
            if attempt == attempts - 1:
                raise


@contextmanager
def launched_chromium(timeout_ms: int = 30_000) -> Iterator[Any]:
    """Debian's Chromium through Playwright, with `expect`'s wait set to `timeout_ms` (a Streamlit rerun
    on a loaded 2-core machine can take a while). Modules that serve their own app use it in their
    own module-scoped fixture: Playwright's sync API allows one running instance per thread."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=timeout_ms)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextmanager
def opened_page(browser: Any, base_url: str, timeout_ms: int = 30_000) -> Iterator[Any]:
    """A page in a fresh browser context (own cookies) on `base_url`; the context closes after."""
    context = browser.new_context(viewport=VIEWPORT, base_url=base_url)
    context.set_default_timeout(timeout_ms)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="module")
def browser(app_url: str) -> Iterator[object]:
    """Chromium for one test module. Module scope, not session: Playwright's sync API allows one
    running instance per thread, and a module that starts its own must not find this one alive."""
    with launched_chromium() as browser:
        yield browser


@pytest.fixture
def page(browser: object, app_url: str) -> Iterator[object]:
    with opened_page(browser, app_url) as page:
        yield page
