"""Cached project figures: the Projects page's counts and the Data browser's filter menus. Keyed on (database URL, project, data version): the
version (`curation.agreement.loading.data_version`) moves with every example, annotation and project
change, so a rerun costs two indexed queries instead of a scan of every item, and is never stale."""

from __future__ import annotations

from typing import Any

import streamlit as st
from sqlalchemy.engine import Engine

from curation.access.roles import LEADS, require_role
from curation.agreement.loading import data_version
from curation.data.browse import distinct_values
from curation.data.projects import project_stats
from curation.embeddings.encode import project_stamp
from curation.models import Role, User
from curation.settings import get_settings


def current_project_stats(engine: Engine, user: User, project_id: int) -> dict[str, Any]:
    """`project_stats` for this user (its role checked on every call), from the cache when unchanged."""
    require_role(user, *Role)
    return _stats(get_settings().resolved_database_url, project_id, data_version(engine, project_id), engine, user)


@st.cache_data(show_spinner=False, max_entries=64)
def _stats(url: str, project_id: int, version: str, _engine: Engine, _actor: User) -> dict[str, Any]:
    return project_stats(_engine, _actor, project_id)


def filter_values(engine: Engine, user: User, project_id: int, column: str) -> list[str]:
    """`distinct_values` of an Example column for a filter menu (role checked on every call), read
    again only when the project's examples changed (`project_stamp`: one indexed query)."""
    require_role(user, *LEADS)
    return _values(get_settings().resolved_database_url, project_id, column, project_stamp(engine, project_id),
                   engine, user)


@st.cache_data(show_spinner=False, max_entries=64)
def _values(url: str, project_id: int, column: str, stamp: str, _engine: Engine, _actor: User) -> list[str]:
    return distinct_values(_engine, _actor, project_id, column)
