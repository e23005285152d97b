"""Cached engine, the logged-in user and the current project, under namespaced session keys.

The user is re-read from the database on every run, so a deactivated account or a changed role
takes effect at once. A browser reload starts a new Streamlit session and asks to log in again.
"""

from __future__ import annotations

import streamlit as st
from sqlalchemy.engine import Engine

from curation.auth import authenticate, require_role
from curation.bootstrap import initialise
from curation.db import make_engine, read_session
from curation.errors import PermissionDenied
from curation.models import Project, Role, User
from curation.projects import list_projects
from curation.settings import get_settings

USER_KEY = "auth.user_id"
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


def current_user() -> User | None:
    user_id = st.session_state.get(USER_KEY)
    if user_id is None:
        return None
    with read_session(get_engine()) as session:
        user = session.get(User, user_id)
    if user is None or not user.active:
        st.session_state.pop(USER_KEY, None)
        return None
    return user


def log_in(username: str, password: str) -> User | None:
    user = authenticate(get_engine(), username, password)
    if user is not None:
        st.session_state.clear()  # nothing of a previous user's view survives a new login
        st.session_state[USER_KEY] = user.id
    return user


def log_out() -> None:
    st.session_state.clear()


def require_user(*roles: Role) -> User:
    """The logged-in user with one of `roles` (any role when none given); stops the page otherwise."""
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
