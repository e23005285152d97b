"""The prologue every page runs first: who is logged in (with a role the page needs), the engine, the
current project and the title. A page that may not be shown stops here with a message."""

from __future__ import annotations

import streamlit as st
from sqlalchemy.engine import Engine

from curation.models import Project, Role, User
from ui.session import current_project, get_engine, require_user


def open_page(title: str, *roles: Role) -> tuple[User, Engine]:
    """The logged-in user with one of `roles` (any role when none given) and the engine; shows `title`."""
    user = require_user(*roles)
    engine = get_engine()
    st.title(title)
    return user, engine


def open_project_page(title: str, *roles: Role) -> tuple[User, Engine, Project]:
    """As open_page, plus the project picked in the sidebar; with no project yet the page says so and stops."""
    user = require_user(*roles)
    engine = get_engine()
    project = current_project()
    assert project is not None  # current_project() stops the page when there is none
    st.title(title)
    return user, engine, project
