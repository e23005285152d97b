"""Staying signed in across a reload (app.py, ui/session.py): a new Streamlit session that brings
the browser's session cookie resumes as its user; log out and deactivation end it everywhere; an
OpenID Connect identity from st.login maps to an account. The cookie itself is the one boundary
mocked here (AppTest has no browser): tests/e2e/test_session_browser.py covers the real one."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from curation.access.accounts import set_active
from curation.models import User
from tests.pages.helpers import by_label, logged_in, new_app, no_exception, values
from ui import session as ui_session
from ui.session import TOKEN_KEY, USER_KEY


def _reload(monkeypatch: pytest.MonkeyPatch, token: str | None):
    """A new session (what a browser reload starts) whose handshake carried `token` as the cookie."""
    monkeypatch.setattr(ui_session, "browser_cookie", lambda: token)
    return new_app().run()


def test_a_reload_keeps_the_user_signed_in(engine: Engine, lead: User, monkeypatch: pytest.MonkeyPatch) -> None:
    at = logged_in("lena", "lead-password")
    token = at.session_state[TOKEN_KEY]
    assert any("document.cookie" in str(h.proto.body) for h in at.get("html"))  # the cookie is written
    reloaded = _reload(monkeypatch, token)
    no_exception(reloaded)
    assert values(reloaded.title) == ["Projects"]
    assert reloaded.session_state[USER_KEY] == lead.id
    assert "**lena** · lead" in values(reloaded.sidebar.markdown)


def test_no_cookie_or_a_bad_one_shows_the_login_form(engine: Engine, lead: User,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for token in (None, "1.abc.99999999999.forged"):
        at = _reload(monkeypatch, token)
        assert [t.label for t in at.text_input] == ["Username", "Password"]
        assert USER_KEY not in at.session_state


def test_log_out_revokes_the_cookie_for_every_tab(engine: Engine, lead: User,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    at = logged_in("lena", "lead-password")
    token = at.session_state[TOKEN_KEY]
    other_tab = _reload(monkeypatch, token)
    assert values(other_tab.title) == ["Projects"]
    by_label(at.sidebar.button, "Log out").click().run()
    no_exception(at)
    assert any("max-age=0" in str(h.proto.body) for h in at.get("html"))  # the cookie is deleted
    assert [t.label for t in _reload(monkeypatch, token).text_input] == ["Username", "Password"]
    other_tab.run()  # the open tab is signed out at its next run
    assert USER_KEY not in other_tab.session_state
    assert values(other_tab.title) == ["LoRA Curation Workbench"]


def test_deactivation_signs_the_account_out_of_a_reload(engine: Engine, admin: User, lead: User,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    token = logged_in("lena", "lead-password").session_state[TOKEN_KEY]
    set_active(engine, admin, lead.id, False)  # type: ignore[arg-type]
    set_active(engine, admin, lead.id, True)  # type: ignore[arg-type]
    at = _reload(monkeypatch, token)
    assert USER_KEY not in at.session_state and values(at.title) == ["LoRA Curation Workbench"]


def test_an_oidc_identity_signs_in_its_account(engine: Engine, lead: User, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OIDC_USERNAME_CLAIM", "preferred_username")
    from curation.settings import get_settings

    get_settings.cache_clear()
    at = new_app()
    at.secrets["auth"] = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "s" * 32,
                          "client_id": "workbench", "client_secret": "secret",
                          "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}
    at.run()
    assert [b.label for b in at.button] == ["Log in", "Sign in with single sign-on"]
    at.user = {"is_logged_in": True, "preferred_username": "lena", "email": "lena@example.org"}
    at.run()
    no_exception(at)
    assert values(at.title) == ["Projects"] and at.session_state[USER_KEY] == lead.id
    stranger = new_app()
    stranger.secrets["auth"] = at.secrets["auth"]
    stranger.user = {"is_logged_in": True, "preferred_username": "mallory"}
    stranger.run()
    assert USER_KEY not in stranger.session_state
    assert values(stranger.error) == ["No account 'mallory' here yet: ask an admin to add it."]
