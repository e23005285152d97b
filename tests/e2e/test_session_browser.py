"""Sessions in a real Chromium against `streamlit run`:

1. a reload in the middle of review keeps the annotator signed in, on the Review page, on the same item
   (the session cookie, ui/session.py; the item in the URL, ui/links.py);
2. a reload in the middle of training keeps the lead signed in on the Train page, attached to the run,
   with the run's preset in the form; Cancel then says "cancelling" and when the run stopped;
3. log out ends the session: a reload shows the login form;
4. a link opened while signed out (`/review`, `/browse?item=N`) shows a usable login form at its address,
   on a server that has already served a session, and the log in opens the linked page and item;
5. OpenID Connect: st.login against oidc-provider-mock on 127.0.0.1 signs in the mapped account.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    VIEWPORT,
    _require_chromium,
    log_in,
    open_page,
    serve_app,
)

pytestmark = pytest.mark.browser

DEMO_TICKETS = "Support tickets (demo)"


def _settled(page: Any) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")


def _signed_in_as(page: Any, username: str) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stSidebar").get_by_text(re.compile(f"^{re.escape(username)} ·"))).to_be_visible()


def _front_page_ready(page: Any) -> None:
    """Open the front page and wait for the login form: a server's first session prepares the database
    (and loads the demo), which on a loaded machine outlasts the 30 s that `log_in` waits."""
    from playwright.sync_api import expect

    page.goto("/")
    expect(page.get_by_role("textbox", name="Username")).to_be_visible(timeout=180_000)


def _item(main: Any) -> str:
    from playwright.sync_api import expect

    caption = main.get_by_text(re.compile(r"^Item #\d+ · "))
    expect(caption).to_be_visible()
    return caption.inner_text()


def test_a_reload_mid_review_keeps_the_user_the_page_and_the_item(page: Any) -> None:
    from playwright.sync_api import expect

    _front_page_ready(page)
    log_in(page, "alice", "alice-demo")
    _signed_in_as(page, "alice")
    main = open_page(page, DEMO_TICKETS, "Review")
    expect(main.get_by_role("heading", name="Review")).to_be_visible()
    _settled(page)
    page.keyboard.press("1")  # label one item: mid-review
    _settled(page)
    shown = _item(main)
    number = shown.split("#")[1].split(" ")[0]
    expect(page).to_have_url(re.compile(rf"/review\?item={number}$"))
    page.reload()
    _signed_in_as(page, "alice")
    main = page.get_by_test_id("stMain")
    expect(main.get_by_role("heading", name="Review")).to_be_visible()
    assert _item(main) == shown
    expect(page.get_by_role("textbox", name="Username")).to_have_count(0)


@pytest.fixture(scope="module")
def training_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on a database with an approved classification version (52 items) and a lead."""
    _require_chromium()
    from curation.access.accounts import create_user
    from curation.db import make_engine, migrate
    from curation.models import Role, TaskType
    from tests.training.helpers import WORDS, classification_rows, make_version

    data_dir = tmp_path_factory.mktemp("e2e-train")
    database_url = f"sqlite:///{data_dir / 'curation.db'}"
    engine = make_engine(database_url)
    migrate(engine)
    admin = create_user(engine, None, "root", Role.admin, "root-password")
    lead = create_user(engine, admin, "lead", Role.lead, "lead-password")
    make_version(engine, lead, "Tickets", TaskType.classification, classification_rows(), labels=list(WORDS))
    engine.dispose()
    with serve_app(data_dir, DATABASE_URL=database_url, LOAD_DEMO="false", ADMIN_USERNAME="",
                   ADMIN_PASSWORD="") as url:
        yield url


def test_a_reload_mid_training_stays_attached_then_cancel_reports(browser: Any, training_app: str) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport=VIEWPORT, base_url=training_app)
    context.set_default_timeout(30_000)
    page = context.new_page()
    _front_page_ready(page)
    log_in(page, "lead", "lead-password")
    _signed_in_as(page, "lead")
    main = open_page(page, "Tickets", "Train")
    start = main.get_by_role("button", name="Start training")
    expect(start).to_be_enabled()  # at once: the preflight runs in the background
    main.get_by_role("radiogroup", name="Preset").get_by_text("quick").click()
    _settled(page)
    start.click()
    expect(main.get_by_text(re.compile(r"^Run #\d+ (started|queued)\.$"))).to_be_visible()
    page.reload()
    _signed_in_as(page, "lead")
    main = page.get_by_test_id("stMain")
    expect(main.get_by_role("heading", name="Train")).to_be_visible()
    expect(main.get_by_text(re.compile(r"^The form shows the settings of run #\d+"))).to_be_visible()
    expect(main.get_by_role("radiogroup", name="Preset").get_by_role("radio", name="quick")).to_be_checked()
    main.get_by_role("button", name="Cancel run").click()
    # "Cancelling…" (disabled) shows until the worker stops; one still loading its model stops at once
    cancelled = main.get_by_text(re.compile(r"^Cancelled: stopped at \d\d:\d\d:\d\d"))
    expect(main.get_by_role("button", name="Cancelling…").or_(cancelled).first).to_be_visible()
    expect(cancelled).to_be_visible(timeout=120_000)
    expect(main.get_by_role("link", name=re.compile(r"^Open run #\d+ on the Runs page"))).to_be_visible()
    context.close()


def test_log_out_ends_the_session_for_a_reload(page: Any) -> None:
    from playwright.sync_api import expect

    _front_page_ready(page)
    log_in(page, "bob", "bob-demo")
    _signed_in_as(page, "bob")
    page.get_by_test_id("stSidebar").get_by_role("button", name="Log out").click()
    expect(page.get_by_role("textbox", name="Username")).to_be_visible()
    page.reload()
    expect(page.get_by_role("textbox", name="Username")).to_be_visible()


def _served_one_session(browser: Any, app_url: str) -> None:
    """Open the app's front page in a context of its own, so the server has run app.py's navigation
    (what any server in use has done) before the link is opened. A server's first session instead
    runs a deep link's page file alone (Streamlit's pages-folder mode), which hid the fault."""
    context = browser.new_context(viewport=VIEWPORT, base_url=app_url)
    try:
        page = context.new_page()
        _front_page_ready(page)
        _settled(page)
    finally:
        context.close()


def _log_in_here(page: Any, username: str, password: str) -> None:
    """Log in on the page the link opened (no navigation to "/" first, unlike conftest.log_in)."""
    from playwright.sync_api import expect

    # No "Page not found" dialog over the form: its modal made the form inert (the bug).
    expect(page.get_by_role("dialog")).to_have_count(0)
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    _signed_in_as(page, username)


def _demo_item(tmp_path_factory: pytest.TempPathFactory, external_id: str) -> int:
    from sqlalchemy import select

    from curation.data.bootstrap import DEMO_CLASSIFICATION
    from curation.db import make_engine, read_session
    from curation.models import Example, Project
    from tests.e2e.conftest import server_data_dir

    engine = make_engine(f"sqlite:///{server_data_dir(tmp_path_factory) / 'curation.db'}")
    try:
        with read_session(engine) as session:
            return int(session.execute(select(Example.id).join(Project, Project.id == Example.project_id).where(
                Project.name == DEMO_CLASSIFICATION, Example.external_id == external_id)).scalar_one())
    finally:
        engine.dispose()


def test_a_link_opened_while_signed_out_opens_its_page_after_the_log_in(
        browser: Any, app_url: str, page: Any) -> None:
    """The login form of a signed-out link is usable and keeps the link's address; the log in then
    opens the linked page. Before the fix the signed-out navigation knew no page `/review`: Streamlit
    answered "Page not found" with a modal dialog that left the form inert."""
    from playwright.sync_api import expect

    _served_one_session(browser, app_url)
    page.goto("/review")
    expect(page.get_by_role("textbox", name="Username")).to_be_editable()
    expect(page).to_have_url(re.compile(r"/review$"))  # the address stays the link
    _log_in_here(page, "bob", "bob-demo")
    expect(page.get_by_test_id("stMain").get_by_role("heading", name="Review")).to_be_visible()
    # The linked page, not the front page; whether an item follows depends on bob's queue on this shared
    # demo server (earlier modules label on it), so the item link is checked on the Data browser below.
    expect(page).to_have_url(re.compile(r"/review(\?item=\d+)?$"))


def test_a_data_browser_link_opened_while_signed_out_shows_its_item(
        browser: Any, app_url: str, page: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """`/browse?item=N` sent to a signed-out lead: after the log in the Data browser shows item N
    (its caption and text), and the address keeps `?item=N`."""
    from playwright.sync_api import expect

    _served_one_session(browser, app_url)
    item = _demo_item(tmp_path_factory, "T-00001")
    page.goto(f"/browse?item={item}")
    expect(page.get_by_role("textbox", name="Username")).to_be_editable()
    _log_in_here(page, "lead", "lead-demo")
    main = page.get_by_test_id("stMain")
    expect(main.get_by_role("heading", name="Data browser")).to_be_visible()
    expect(main.get_by_text(re.compile(rf"^#{item} · T-00001 · "))).to_be_visible()
    expect(page).to_have_url(re.compile(rf"/browse\?item={item}$"))


# --------------------------------------------------------------------------- OpenID Connect


@pytest.fixture(scope="module")
def oidc_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app with [auth] pointing at oidc-provider-mock on 127.0.0.1, and an account for maria."""
    _require_chromium()
    oidc_provider_mock = pytest.importorskip("oidc_provider_mock")
    data_dir = tmp_path_factory.mktemp("e2e-oidc")
    with oidc_provider_mock.run_server_in_thread(user_claims=[oidc_provider_mock.User(
            sub="maria", claims={"email": "maria@example.org", "email_verified": True, "name": "Maria"})]) as provider:
        issuer = f"http://127.0.0.1:{provider.server_port}"
        secrets = Path(data_dir) / "secrets.toml"
        secrets.write_text(
            "[auth]\n"
            'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'  # Streamlit fills in its port
            'cookie_secret = "an-e2e-cookie-secret-of-enough-length"\n'
            'client_id = "workbench"\n'
            'client_secret = "workbench-secret"\n'
            f'server_metadata_url = "{issuer}/.well-known/openid-configuration"\n', encoding="utf-8")
        database_url = f"sqlite:///{data_dir / 'curation.db'}"
        from curation.access.accounts import create_user
        from curation.db import make_engine, migrate
        from curation.models import Role

        engine = make_engine(database_url)
        migrate(engine)
        admin = create_user(engine, None, "root", Role.admin, "root-password")
        create_user(engine, admin, "maria@example.org", Role.lead, None)
        engine.dispose()
        with serve_app(data_dir, DATABASE_URL=database_url, LOAD_DEMO="false", ADMIN_USERNAME="", ADMIN_PASSWORD="",
                       STREAMLIT_SECRETS_FILES=str(secrets)) as url:
            yield url


def test_oidc_sign_in_maps_to_the_account(browser: Any, oidc_app: str) -> None:
    from playwright.sync_api import expect

    # The module's Chromium: Playwright's sync API allows one instance at a time in a thread.
    context = browser.new_context(viewport=VIEWPORT, base_url=oidc_app)
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto("/")
        page.get_by_role("button", name="Sign in with single sign-on").click()
        page.get_by_role("button", name="maria").click()  # the provider's predefined user
        _signed_in_as(page, "maria@example.org")
        expect(page.get_by_role("heading", name="Projects")).to_be_visible()
        page.reload()  # Streamlit's identity cookie survives the reload, and maps again
        _signed_in_as(page, "maria@example.org")
    finally:
        context.close()
