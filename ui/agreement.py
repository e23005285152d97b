"""Cached readers for the Agreement page. Keyed on (database URL, project, level, data version): a rerun is
instant and a new label (a new data version) shows at once. The engine and actor are not hashed (_ names)."""

from __future__ import annotations

import streamlit as st
from sqlalchemy.engine import Engine

from curation.agreement.figures import AgreementReport, Confusion
from curation.agreement.report import agreement_report, confusion
from curation.agreement.sources import BlindSummary, SourceAccuracy, blind_summary, source_report
from curation.models import User


@st.cache_data(show_spinner="Computing agreement...", max_entries=32)
def cached_report(url: str, project_id: int, level: str, version: str, _engine: Engine,
                  _actor: User) -> AgreementReport:
    return agreement_report(_engine, _actor, project_id, level)


@st.cache_data(show_spinner=False, max_entries=64)
def cached_confusion(url: str, project_id: int, a: int, b: int, version: str, _engine: Engine,
                     _actor: User) -> Confusion:
    return confusion(_engine, _actor, project_id, a, b)


@st.cache_data(show_spinner="Comparing sources with the experts...", max_entries=32)
def cached_sources(url: str, project_id: int, version: str, sources_version: str, _engine: Engine,
                   _actor: User) -> tuple[BlindSummary, list[SourceAccuracy]]:
    """The blind items and each source against the experts; keyed on the agreement data version and
    `curation.agreement.sources.sources_version` (suggestions, audits)."""
    return blind_summary(_engine, _actor, project_id), source_report(_engine, _actor, project_id)
