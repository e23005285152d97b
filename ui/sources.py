"""The Agreement page's "Sources" section (issue 12): which items were blind, the project's source
settings, and each source against the experts' final labels. Reads widgets, calls the core, renders."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from sqlalchemy.engine import Engine

from curation.agreement.sources import set_source_settings, sources_version
from curation.db import read_session
from curation.embeddings.suggest import PROBE_SOURCE, read_suggest_job, start_suggest_job
from curation.errors import CurationError
from curation.models import Project, SuggestionDisplay, User
from curation.review.audits import close_audit, list_audits, sample_size, start_audit
from curation.review.sources import list_sources
from curation.settings import get_settings
from ui.agreement import cached_sources
from ui.widgets import escape_markdown, show_error

DISPLAY_TEXT = {
    SuggestionDisplay.hidden.value: "hidden",
    SuggestionDisplay.after_choice.value: "shown after the annotator has chosen",
    SuggestionDisplay.beside.value: "shown beside the item with source and score",
}


def _interval(low: float | None, high: float | None, digits: str = ".0%") -> str:
    return "—" if low is None or high is None else f"[{low:{digits}}, {high:{digits}}]"


def show_sources_section(engine: Engine, user: User, project: Project, key: str, version: str) -> None:
    """`version`: the agreement data version the page computed (curation.agreement.loading.data_version)."""
    st.subheader("Sources against the experts")
    try:
        blind, reports = cached_sources(get_settings().resolved_database_url, project.id or 0, version,
                                        sources_version(engine, project.id or 0), engine, user)
    except CurationError as error:
        show_error(error)
        return
    st.caption(escape_markdown(
        f"Blind items: {blind.blind_items:,} of {blind.items:,} never show suggestions or source votes "
        f"(a fixed {blind.fraction:.0%} kept for agreement, plus items of open label audits). "
        "Source accounts are never counted as annotators."))
    if blind.blind_external_ids:
        with st.expander("Blind items (first 50)"):
            st.text(", ".join(blind.blind_external_ids))
    if not reports:
        st.caption("No source has given labels in this project (import labels as votes or suggestions).")
    else:
        for report in reports:
            st.text(report.summary())
        st.dataframe(pd.DataFrame([{
            "source": r.source, "items with an expert label": r.n, "agree": r.agree,
            "accuracy": "—" if r.accuracy is None else f"{r.accuracy:.1%}",
            "95% interval (Wilson)": _interval(r.low if r.n else None, r.high if r.n else None, ".1%"),
            "Cohen's kappa": "undefined" if r.kappa is None else f"{r.kappa:.3f}",
            "kappa 95% interval (bootstrap)": _interval(r.kappa_low, r.kappa_high, ".3f"),
        } for r in reports]), hide_index=True, width="stretch", key=f"{key}.sources")
        st.dataframe(pd.DataFrame([{
            "source": r.source, "expert label": row.label, "items": row.n, "source agrees": row.agree,
            "accuracy": "—" if row.accuracy is None else f"{row.accuracy:.1%}",
            "95% interval (Wilson)": _interval(row.low, row.high, ".1%"),
        } for r in reports for row in r.per_label]), hide_index=True, width="stretch", key=f"{key}.source_labels")
    with st.form(f"{key}.source_settings"):
        st.markdown("**Source settings**")
        options = list(DISPLAY_TEXT)
        display = st.selectbox("Suggestions in review", options, index=options.index(str(project.suggestion_display)),
                               format_func=DISPLAY_TEXT.__getitem__, key=f"{key}.display")
        counts = st.checkbox("A source's vote fills one of an item's k slots", value=bool(project.source_votes_count),
                             key=f"{key}.votes_count")
        fraction = st.number_input("Share of items kept blind for agreement", 0.0, 1.0,
                                   float(project.blind_fraction), 0.05, key=f"{key}.blind")
        threshold = st.number_input("Version checklist: highest upper bound of a source's error rate", 0.001, 0.999,
                                    float(project.max_source_error), 0.01, format="%.3f", key=f"{key}.max_error")
        if st.form_submit_button("Save source settings"):
            try:
                set_source_settings(engine, user, project.id or 0, suggestion_display=display,
                                    source_votes_count=counts, blind_fraction=fraction, max_source_error=threshold)
            except CurationError as error:
                show_error(error)
            else:
                st.success("Source settings saved.")


def show_audits_section(engine: Engine, user: User, project: Project, key: str) -> None:
    """Label audits: start one (with the sample-size calculator), follow its estimate, close it."""

    st.subheader("Label audits")
    with read_session(engine) as session:
        sources = list_sources(session, project.id or 0)
    if not sources:
        st.caption("No source to audit: import labels as votes or suggestions first.")
        return
    c1, c2 = st.columns(2)
    rate = c1.number_input("Expected error rate", 0.0, 1.0, 0.15, 0.01, key=f"{key}.audit_rate")
    half = c2.number_input("Interval half width wanted (±)", 0.005, 0.5, 0.035, 0.005, format="%.3f",
                           key=f"{key}.audit_half")
    needed = sample_size(rate, half)
    st.caption(f"Sample size: {needed:,} reviewed items give a 95% Clopper-Pearson interval at most "
               f"±{half:.1%} wide around {rate:.0%}.")
    with st.form(f"{key}.audit_start"):
        f1, f2, f3 = st.columns(3)
        source = f1.selectbox("Source", sources, key=f"{key}.audit_source")
        size = int(f2.number_input("Items", 1, 100_000, min(needed, 100_000), key=f"{key}.audit_size"))
        seed = int(f3.number_input("Seed", 0, 2**31 - 1, 0, key=f"{key}.audit_seed"))
        if st.form_submit_button("Start audit"):
            try:
                record = start_audit(engine, user, project.id or 0, source, size, seed)
            except CurationError as error:
                show_error(error)
            else:
                st.success(escape_markdown(f"Audit #{record.id} of {record.source}: {record.size} items drawn; "
                                           "they go first in the review queue, blind."))
    results = list_audits(engine, user, project.id or 0)
    for result in results:
        st.text(result.summary() + ("" if result.status == "open" else " (closed)"))
    if results:
        st.dataframe(pd.DataFrame([{
            "audit": r.audit_id, "source": r.source, "source label": row.label, "population": row.population,
            "sampled": row.sampled, "reviewed": row.reviewed, "errors": row.errors,
            "error rate": "—" if row.rate is None else f"{row.rate:.1%}",
            "95% interval (Clopper-Pearson)": _interval(row.low, row.high, ".1%") if row.reviewed else "—",
        } for r in results for row in r.per_label]), hide_index=True, width="stretch", key=f"{key}.audits")
        open_ids = [r.audit_id for r in results if r.status == "open"]
        if open_ids:
            chosen = st.selectbox("Open audit", open_ids, format_func=lambda i: f"#{i}", key=f"{key}.audit_close")
            if st.button("Close audit (its items leave blind review)", key=f"{key}.audit_close_button"):
                try:
                    close_audit(engine, user, chosen)
                except CurationError as error:
                    show_error(error)
                else:
                    st.rerun()


def show_suggest_section(engine: Engine, user: User, project: Project, key: str) -> None:
    """Model pre-labels: launch the linear probe in the background and follow it (issue 12)."""

    st.subheader("Model pre-labels")
    st.caption(f"A linear probe on the sentence embeddings suggests a label and its probability ({PROBE_SOURCE}) "
               "for every item without an expert label; the queue orders lowest margin and disagreement read them.")
    state = read_suggest_job(project.id or 0)
    running = bool(state and state.get("status") == "running")
    if st.button("Suggest labels (linear probe)", key=f"{key}.suggest", disabled=running):
        try:
            state = start_suggest_job(engine, user, project.id or 0)
        except CurationError as error:
            show_error(error)
    if state:
        status = state.get("status")
        if status == "running":
            total = int(state.get("total") or 0)
            done = int(state.get("done") or 0)
            st.progress(done / total if total else 0.0, text=f"Suggest job running: {done:,} / {total:,} texts embedded")
        elif status == "done":
            report = state.get("report") or {}
            st.caption(escape_markdown(f"Last suggest run: {report.get('items', 0):,} suggestions written, probe "
                                       f"trained on {report.get('trained_on', 0):,} items."))
        else:
            st.error(escape_markdown(f"The suggest job failed: {state.get('error')}"))
