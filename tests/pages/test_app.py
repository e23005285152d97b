"""app.py: the login form, navigation by role, logging out, and pages refusing the wrong role."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine
from streamlit.testing.v1 import AppTest

from curation.models import User
from tests.pages.helpers import (
    REPO,
    TIMEOUT,
    by_label,
    logged_in,
    new_app,
    no_exception,
    submit_login,
    values,
)
from ui.session import USER_KEY

LOGIN_ERROR = "Unknown username or wrong password."


def test_login_form_is_the_only_page_before_login(engine: Engine, lead: User) -> None:
    at = new_app().run()
    no_exception(at)
    assert values(at.title) == ["LoRA Curation Workbench"]
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert [b.label for b in at.button] == ["Log in"]
    with pytest.raises(ValueError):  # nothing but the login page is registered
        at.switch_page("pages/projects.py")


@pytest.mark.parametrize(
    ("username", "password"), [("lena", "wrong-password"), ("nobody", "lead-password"), ("lena", "")]
)
def test_login_failure_shows_the_error_and_stays_logged_out(
    engine: Engine, lead: User, username: str, password: str
) -> None:
    at = new_app().run()
    submit_login(at, username, password)
    no_exception(at)
    assert values(at.error) == [LOGIN_ERROR]
    assert USER_KEY not in at.session_state
    assert values(at.title) == ["LoRA Curation Workbench"]
    assert [b.label for b in at.button] == ["Log in"]


def test_lead_logs_in_and_reaches_every_lead_page(engine: Engine, lead: User) -> None:
    at = logged_in("lena", "lead-password")
    assert values(at.title) == ["Projects"]
    assert at.session_state[USER_KEY] == lead.id
    assert "**lena** · lead" in values(at.sidebar.markdown)
    assert [b.label for b in at.sidebar.button] == ["Log out"]
    at.switch_page("pages/import_data.py").run()
    no_exception(at)
    assert values(at.title) == ["Import"]
    at.switch_page("pages/browse.py").run()
    no_exception(at)
    # No project yet: the browser says so instead of failing.
    assert values(at.info) == ["No project yet. A lead creates one on the Projects page."]
    at.switch_page("pages/projects.py").run()
    assert values(at.title) == ["Projects"]


def test_annotator_navigation_has_no_import_or_data_browser(engine: Engine, annotator: User) -> None:
    at = logged_in("anna", "annotator-password")
    assert values(at.title) == ["Projects"]
    assert "**anna** · annotator" in values(at.sidebar.markdown)
    # st.navigation registered only the Projects page: switching to the others is refused.
    for page in ("pages/import_data.py", "pages/browse.py"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(page)
    # An annotator gets no create/edit forms either.
    assert [b.label for b in at.main.button] == []
    assert at.text_input.len == 0


@pytest.mark.parametrize(
    ("page", "title"), [("pages/import_data.py", "Import"), ("pages/browse.py", "Data browser")]
)
def test_lead_pages_run_directly_refuse_an_annotator(
    engine: Engine, annotator: User, page: str, title: str
) -> None:
    at = AppTest.from_file(str(REPO / page), default_timeout=TIMEOUT)
    at.session_state[USER_KEY] = annotator.id
    at.run()
    no_exception(at)
    assert values(at.error) == ["User 'anna' is annotator; this needs lead or admin."]
    assert title not in values(at.title)
    assert at.selectbox.len == 0 and at.dataframe.len == 0


@pytest.mark.parametrize("page", ["pages/projects.py", "pages/import_data.py", "pages/browse.py"])
def test_pages_run_directly_without_login_ask_to_log_in(engine: Engine, page: str) -> None:
    at = AppTest.from_file(str(REPO / page), default_timeout=TIMEOUT).run()
    no_exception(at)
    assert values(at.warning) == ["Please log in."]
    assert at.title.len == 0


def test_log_out_returns_to_the_login_form(engine: Engine, lead: User) -> None:
    at = logged_in("lena", "lead-password")
    by_label(at.sidebar.button, "Log out").click().run()
    no_exception(at)
    assert USER_KEY not in at.session_state
    assert values(at.title) == ["LoRA Curation Workbench"]
    assert [t.label for t in at.text_input] == ["Username", "Password"]


def test_a_deactivated_account_is_logged_out_on_the_next_run(engine: Engine, lead: User) -> None:
    at = logged_in("lena", "lead-password")
    with engine.begin() as conn:
        conn.execute(update(User).where(User.id == lead.id).values(active=False))
    at.run()
    no_exception(at)
    assert USER_KEY not in at.session_state
    assert values(at.title) == ["LoRA Curation Workbench"]


# --------------------------------------------------------------------------- page addresses (links)
# A browser at `/review?item=5` asks for the page by its URL path; once a navigation lists that path,
# its reruns send the page's id, the hash of the path (what st.Page computes). AppTest has no URL
# path, so these tests send that id the way a browser on that address does.


def _at_address(url_path: str, **params: int) -> AppTest:
    from streamlit.util import calc_hash

    at = new_app()
    at._page_hash = calc_hash(url_path)  # noqa: SLF001 - the browser's page id for this address
    for name, value in params.items():
        at.query_params[name] = str(value)
    return at


def test_every_page_address_shows_the_login_form_while_signed_out(engine: Engine) -> None:
    at = new_app().run()
    no_exception(at)
    registered = {info.get("url_pathname") for info in at._registered_pages.values()}  # noqa: SLF001
    # Every page file has its address in the signed-out navigation (Projects is the default, at "/"):
    # an unlisted one made Streamlit show "Page not found" over an inert login form.
    files = {path.stem for path in (REPO / "pages").glob("*.py")} - {"projects"}
    assert files <= registered, files - registered
    for path in ("review", "browse", "users"):
        page = _at_address(path).run()
        no_exception(page)
        assert values(page.title) == ["LoRA Curation Workbench"]
        assert [t.label for t in page.text_input] == ["Username", "Password"]


def test_a_link_opened_while_signed_out_opens_its_page_and_item_after_the_log_in(
        engine: Engine, lead: User) -> None:
    from tests.curation.test_review_queue import example_ids, make_project

    project = make_project(engine, lead, 3, k=2)
    second = example_ids(engine, project)[1]
    at = _at_address("review", item=second).run()
    assert values(at.title) == ["LoRA Curation Workbench"]
    submit_login(at, "lena", "lead-password")
    no_exception(at)
    assert values(at.title) == ["Review"]
    assert f"Item #{second} · T-002" in values(at.caption)
    assert at.query_params["item"] == str(second)


def test_a_lead_page_address_tells_an_annotator_it_is_not_theirs(engine: Engine, annotator: User) -> None:
    at = _at_address("browse").run()
    submit_login(at, "anna", "annotator-password")
    no_exception(at)
    assert values(at.title) == ["Not available"]
    assert values(at.error) == ["This page is not open to your role (annotator). Your pages are in the menu."]
    assert at.dataframe.len == 0


def test_log_out_leaves_the_page_address_for_the_front_page(engine: Engine, lead: User) -> None:
    from tests.curation.test_review_queue import example_ids, make_project

    project = make_project(engine, lead, 2, k=2)
    first = example_ids(engine, project)[0]
    at = _at_address("review", item=first).run()
    submit_login(at, "lena", "lead-password")
    assert values(at.title) == ["Review"]
    by_label(at.sidebar.button, "Log out").click().run()
    no_exception(at)
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert "item" not in at.query_params
    at._page_hash = ""  # noqa: SLF001 - from here on the browser sends the page the run ended on
    submit_login(at, "lena", "lead-password")  # the next person at this browser starts at Projects
    no_exception(at)
    assert values(at.title) == ["Projects"]
