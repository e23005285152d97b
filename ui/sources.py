"""The Agreement page's "Sources" section (issue 12): which items were blind, the project's source
settings, and each source against the experts' final labels. Reads widgets, calls the core, renders."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from sqlalchemy.engine import Engine

from curation.errors import CurationError
from curation.models import Project, SuggestionDisplay, User
from curation.source_report import blind_summary, set_source_settings, source_report
from ui.widgets import escape_markdown, show_error

DISPLAY_TEXT = {
    SuggestionDisplay.hidden.value: "hidden",
    SuggestionDisplay.after_choice.value: "shown after the annotator has chosen",
    SuggestionDisplay.beside.value: "shown beside the item with source and score",
}


def _interval(low: float | None, high: float | None, digits: str = ".0%") -> str:
    return "—" if low is None or high is None else f"[{low:{digits}}, {high:{digits}}]"


def show_sources_section(engine: Engine, user: User, project: Project, key: str) -> None:
    st.subheader("Sources against the experts")
    try:
        blind = blind_summary(engine, user, project.id or 0)
        reports = source_report(engine, user, project.id or 0)
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
