"""Cached engine, the logged-in user and the current project, under namespaced session keys.

The user is re-read from the database on every run, so a deactivated account or a changed role
takes effect at once.

Staying signed in across a reload: a browser reload starts a new Streamlit session with an empty
session state. At log in the core issues a signed, expiring session token (curation/sessions.py,
stored server-side so it can be revoked); the page writes it into a first-party cookie with a
one-line script (`st.html(..., unsafe_allow_javascript=True)`: runs in the app's own document, no
iframe, no third-party component), `SameSite=Strict`, `Secure` under https, never in the URL. A new
session reads it from the WebSocket handshake (`st.context.cookies`) and resumes as that user on the
page of the URL. Every run re-checks the token, so log out (which revokes it) or a deactivation
signs out every tab of that browser at its next run. The cookie is readable by scripts (it is set
by one); the app renders no data as HTML, and the token expires (SESSION_HOURS) and can be revoked.

OpenID Connect: with an `[auth]` section in `.streamlit/secrets.toml`, the login page offers
`st.login`; Streamlit keeps that identity in its own signed cookie, and curation/oidc.py maps it
to an account and role on every new session.
"""

from __future__ import annotations

import streamlit as st
from sqlalchemy.engine import Engine

from curation.access import oidc, sessions
from curation.access.accounts import authenticate
from curation.access.roles import require_role
from curation.data.bootstrap import initialise
from curation.data.projects import list_projects
from curation.db import make_engine, read_session
from curation.errors import CurationError, PermissionDenied
from curation.models import Project, Role, User
from curation.settings import get_settings

USER_KEY = "auth.user_id"
TOKEN_KEY = "auth.token"  # this session's sign-in token (also in the browser's cookie)
_CLEAR_COOKIE = "auth.clear_cookie"
_OIDC_ERROR = "auth.oidc_error"
PROJECT_KEY = "project.id"
_PENDING_PROJECT = "project.pending_id"
_FLASH = "flash.messages"


@st.cache_resource(show_spinner="Preparing the database...")
def _engine_for(url: str) -> Engine:
    engine = make_engine(url)
    initialise(engine)
    return engine


def get_engine() -> Engine:
    return _engine_for(get_settings().resolved_database_url)


def browser_cookie() -> str | None:
    """The session cookie the browser sent when this session opened (None in tests and for a new
    browser). The one seam where the browser's state enters."""
    try:
        return st.context.cookies.get(sessions.COOKIE_NAME)
    except Exception:  # noqa: BLE001 - no client context (bare script run)
        return None


def _oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file at all
        return False


def _oidc_claims() -> dict | None:
    try:
        info = st.user.to_dict()
    except Exception:  # noqa: BLE001
        return None
    return info if info.get("is_logged_in") else None


def _resume() -> int | None:
    """A user id for a session without one: the browser's session cookie, else an OpenID Connect
    identity from st.login. Stores what it found; None when neither signs anyone in."""
    engine = get_engine()
    token = browser_cookie()
    if token and not st.session_state.get(_CLEAR_COOKIE):
        user = sessions.user_for_token(engine, token)
        if user is not None:
            st.session_state[USER_KEY] = user.id
            st.session_state[TOKEN_KEY] = token
            return user.id
    claims = _oidc_claims() if _oidc_configured() else None
    if claims:
        try:
            user = oidc.account_for_claims(engine, claims)
        except CurationError as error:
            st.session_state[_OIDC_ERROR] = str(error)
            return None
        st.session_state[USER_KEY] = user.id
        return user.id
    return None


def current_user() -> User | None:
    user_id = st.session_state.get(USER_KEY)
    if user_id is None:
        user_id = _resume()
        if user_id is None:
            return None
    token = st.session_state.get(TOKEN_KEY)
    if token is not None:  # revoked (log out elsewhere, deactivation) or expired: signed out here too
        user = sessions.user_for_token(get_engine(), token)
        if user is None or user.id != user_id:
            _forget()
            return None
        return user
    with read_session(get_engine()) as session:
        user = session.get(User, user_id)
    if user is None or not user.active:
        st.session_state.pop(USER_KEY, None)
        return None
    return user


def _forget() -> None:
    st.session_state.clear()
    st.session_state[_CLEAR_COOKIE] = True


def log_in(username: str, password: str) -> User | None:
    user = authenticate(get_engine(), username, password)
    if user is not None:
        st.session_state.clear()  # nothing of a previous user's view survives a new login
        st.session_state[USER_KEY] = user.id
        st.session_state[TOKEN_KEY] = sessions.issue_session(get_engine(), user)
    return user


def log_out() -> None:
    sessions.revoke_session(get_engine(), st.session_state.get(TOKEN_KEY))
    oidc_signed_in = _oidc_claims() is not None
    _forget()
    if oidc_signed_in:
        st.logout()  # Streamlit's own identity cookie goes too (this reruns the script)


def session_cookie_script() -> None:
    """Write (while signed in) or delete (after a log out) the session cookie in this browser. Runs in
    the app's document, so the cookie is first-party; zero-size, no output.

    The same element is sent on every run, not once after the log in: a page switch right after the
    log in can replace that run's elements before the browser mounts them, and a script that never
    ran leaves a reload signed out. An unchanged element is not remounted, so it runs once per page."""
    token = st.session_state.get(TOKEN_KEY)
    if token:
        max_age = int(get_settings().session_hours * 3600)
        value = f"{sessions.COOKIE_NAME}={token}; path=/; max-age={max_age}; SameSite=Strict"
    elif st.session_state.pop(_CLEAR_COOKIE, False):
        value = f"{sessions.COOKIE_NAME}=; path=/; max-age=0; SameSite=Strict"
    else:
        return
    # The token is URL-safe base64 and digits joined by dots: nothing to escape in a JS string.
    st.html(f"<script>document.cookie = '{value}' + (location.protocol === 'https:' ? '; Secure' : '');</script>",
            unsafe_allow_javascript=True, width=1)


def oidc_login_button() -> None:
    """"Sign in with single sign-on" when .streamlit/secrets.toml configures [auth]; the mapping's
    refusal (no account, deactivated) shows here."""
    if not _oidc_configured():
        return
    error = st.session_state.get(_OIDC_ERROR)
    if error:
        st.error(error)
        if st.button("Sign out of the identity provider"):
            st.session_state.pop(_OIDC_ERROR, None)
            st.logout()
        return
    if st.button("Sign in with single sign-on"):
        st.login()


def _leave_legacy_pages_mode() -> None:
    """Streamlit runs a page file alone, in its old pages-folder mode, when the first session a server
    process serves opens a deep link (`/review`, e.g. a reload after a restart): there is a `pages/`
    folder next to app.py, and the mode ends only at the first st.navigation call. Then app.py (log
    in, role-based navigation) would not run: end the mode and rerun, so app.py runs on that URL."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False  # what st.navigation does on its first call
        st.rerun()


def require_user(*roles: Role) -> User:
    """The logged-in user with one of `roles` (any role when none given); stops the page otherwise."""
    _leave_legacy_pages_mode()
    user = current_user()
    if user is None:
        st.warning("Please log in.")
        st.stop()
    try:
        return require_role(user, *(roles or tuple(Role)))
    except PermissionDenied as error:
        st.error(str(error))
        st.stop()
    raise AssertionError("unreachable")


def current_project(required: bool = True) -> Project | None:
    """The project picked in the sidebar (kept across pages); the first project by default."""
    user = current_user()
    projects = list_projects(get_engine(), user) if user is not None else []
    if not projects:
        if required:
            st.info("No project yet. A lead creates one on the Projects page.")
            st.stop()
        return None
    ids = [p.id for p in projects]
    if st.session_state.get(PROJECT_KEY) not in ids:
        st.session_state[PROJECT_KEY] = ids[0]
    return next(p for p in projects if p.id == st.session_state[PROJECT_KEY])


def project_picker() -> None:
    """Sidebar select box bound to PROJECT_KEY."""
    user = current_user()
    projects = list_projects(get_engine(), user) if user is not None else []
    if not projects:
        return
    names = {p.id: p.name for p in projects}
    if _PENDING_PROJECT in st.session_state:
        st.session_state[PROJECT_KEY] = st.session_state.pop(_PENDING_PROJECT)
    if st.session_state.get(PROJECT_KEY) not in names:
        st.session_state[PROJECT_KEY] = projects[0].id
    st.sidebar.selectbox("Project", list(names), format_func=names.__getitem__, key=PROJECT_KEY)


def switch_project(project_id: int) -> None:
    """Make `project_id` current from the next run on (the sidebar widget owns the key in this run)."""
    st.session_state[_PENDING_PROJECT] = project_id


def flash(message: str) -> None:
    """A success message that survives the next st.rerun(); shown by `show_flash`."""
    st.session_state.setdefault(_FLASH, []).append(message)


def show_flash() -> None:
    for message in st.session_state.pop(_FLASH, []):
        st.success(message)
