"""Agreement (leads): Krippendorff's alpha at the level that fits the data with its interval and band, the
approval threshold, the other coefficients, per-label and per-annotator figures, an annotator x annotator
kappa heatmap, the confusion of two annotators, and the most disputed items linking into adjudication.

The page never raises: an undefined figure shows "undefined" with the core's reason. The report is cached
on (database, project, level, data version), so a rerun is instant and a new label shows at once.
"""

import html
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from streamlit.errors import StreamlitAPIException

from curation.access.roles import LEADS
from curation.agreement.figures import AgreementReport, Coefficient, default_level, fmt
from curation.agreement.loading import data_version
from curation.errors import CurationError
from curation.settings import get_settings
from ui.agreement import cached_confusion, cached_report
from ui.page import open_project_page
from ui.sources import show_audits_section, show_sources_section
from ui.widgets import escape_markdown, show_error

ADJUDICATE_PAGE = "pages/adjudicate.py"
ADJUDICATE_KEY = "adjudicate.example_id"
PAGE_LEVELS = ("nominal", "ordinal", "interval")
LEVEL_HELP = {
    "nominal": "nominal: labels are unordered categories",
    "ordinal": "ordinal: labels are ranked in the project's label order",
    "interval": "interval: labels are numbers with equal steps",
}
BAND_COLOURS = {"unreliable": "red", "tentative": "orange", "reliable": "green", "undefined": "gray"}


def interval_text(coefficient: Coefficient) -> str:
    if coefficient.has_interval:
        return f"95% interval {fmt(coefficient.low)} to {fmt(coefficient.high)}"
    return f"no interval: {coefficient.interval_reason}" if coefficient.interval_reason else ""


def show_coefficient(column: Any, coefficient: Coefficient, percent: bool = False) -> None:
    if coefficient.defined and percent:
        value = f"{coefficient.value:.1%}"
    else:
        value = fmt(coefficient.value)
    column.metric(coefficient.name, value, help=coefficient.note or None)
    if not coefficient.defined:
        column.caption(escape_markdown(f"{value}: {coefficient.reason}"))
    elif coefficient.has_interval:
        column.caption(interval_text(coefficient))


def heatmap(report: AgreementReport) -> go.Figure:
    pairwise = report.pairwise
    names = [html.escape(name) for name in pairwise.annotators]
    z = [[None if v != v else round(v, 3) for v in row] for row in pairwise.kappa]
    figure = go.Figure(go.Heatmap(
        z=z, x=names, y=names, zmin=-1, zmax=1, colorscale="RdBu", customdata=pairwise.shared,
        texttemplate="%{z:.2f}", hoverongaps=False, colorbar={"title": {"text": "kappa"}},
        hovertemplate="%{y} vs %{x}<br>kappa %{z:.3f}<br>shared items %{customdata}<extra></extra>",
    ))
    weighted = f" ({pairwise.weights}-weighted)" if pairwise.weights else ""
    figure.update_layout(title=f"Cohen's kappa{weighted} between annotators; blank: fewer than two shared items",
                         height=max(320, 60 + 40 * len(names)), margin={"l": 10, "r": 10, "t": 50, "b": 10},
                         yaxis={"autorange": "reversed"})
    return figure


def open_in_adjudication(example_id: int) -> None:
    st.session_state[ADJUDICATE_KEY] = example_id
    try:
        st.switch_page(ADJUDICATE_PAGE)
    except StreamlitAPIException:
        st.error("The adjudication queue is not in the navigation yet.")


user, engine, project = open_project_page("Agreement", *LEADS)
key = f"agreement.{project.id}"
url = get_settings().resolved_database_url

level_default = default_level(project)
level = st.columns([1, 2])[0].selectbox(
    "Level of measurement", PAGE_LEVELS, index=PAGE_LEVELS.index(level_default), format_func=LEVEL_HELP.__getitem__,
    key=f"{key}.level", help=f"Default for this project: {level_default} (ordinal when its labels are ordered). "
                             "Ordinal and interval treat the labels as "
                             "ranked (e.g. severity 1, 0, -1, -2, -3); interval needs numeric labels.")
try:
    version = data_version(engine, project.id)
    report = cached_report(url, project.id, level, version, engine, user)
except CurationError as error:
    show_error(error)
    st.stop()
except Exception as error:  # noqa: BLE001 - the page shows any failure instead of raising
    st.error(f"Agreement could not be computed: {type(error).__name__}: {error}")
    st.stop()

head, items, raters = st.columns([2, 1, 1])
with head:
    alpha = report.alpha
    st.metric(alpha.name, fmt(alpha.value), help="Krippendorff's bands: below 0.667 unreliable, 0.667 to 0.8 "
                                                 "tentative, 0.8 and above reliable.")
    if alpha.has_interval:
        st.caption(f"{interval_text(alpha)} ({report.n_resamples:,} bootstrap resamples of the items)")
    st.markdown(f":{BAND_COLOURS[report.band]}[**{escape_markdown(report.band_text)}**]")
items.metric("Items scored", f"{report.n_scored:,}",
             help=f"{report.n_items:,} items have a rating; scored items have two or more")
raters.metric("Annotators", f"{report.n_raters:,}", help=f"{report.n_ratings:,} ratings in all")

if report.meets_threshold:
    st.success(f"Meets the project's approval threshold: alpha {fmt(alpha.value)} ≥ {report.threshold:g}.")
elif alpha.defined:
    st.error(f"Below the project's approval threshold: alpha {fmt(alpha.value)} < {report.threshold:g}.")
else:
    st.error(f"The approval threshold (alpha ≥ {report.threshold:g}) cannot be met: alpha is undefined.")

columns = st.columns(4)
show_coefficient(columns[0], report.ac1)
show_coefficient(columns[1], report.fleiss)
show_coefficient(columns[2], report.cohen)
show_coefficient(columns[3], report.percent, percent=True)

for warning in report.warnings:
    st.warning(escape_markdown(warning))

st.subheader("Per label")
st.caption("Alpha of each label against all others (nominal): which labels annotators apply consistently.")
st.dataframe(pd.DataFrame([{
    "label": row.label,
    "ratings": row.n_ratings,
    "share": "undefined" if row.share != row.share else f"{row.share:.1%}",
    "alpha (this label vs rest)": fmt(row.alpha),
    "why undefined": row.reason or "",
} for row in report.per_label]), hide_index=True, width="stretch", key=f"{key}.labels")

st.subheader("Annotators")
if report.n_raters >= 2:
    st.plotly_chart(heatmap(report), key=f"{key}.heatmap")
else:
    st.info("The heatmap needs at least two annotators.")
if report.annotators:
    st.dataframe(pd.DataFrame([{
        "annotator": row.annotator,
        "items rated": row.n_rated,
        "mean kappa with others": fmt(row.mean_pairwise_kappa),
        "alpha without them": fmt(row.alpha_without),
        "alpha gain": fmt(row.alpha_gain),
        "items with a final label": row.n_reference,
        "kappa vs final labels": fmt(row.kappa_vs_reference),
        "accuracy vs final labels": fmt(row.accuracy_vs_reference),
        "why undefined": "; ".join(f"{name.replace('_', ' ')}: {why}" for name, why in row.reasons.items()),
    } for row in report.annotators]), hide_index=True, width="stretch", key=f"{key}.annotators")
    st.caption("Alpha gain > 0: alpha is higher with this annotator than without. Final labels are those of "
               "labelled or adjudicated examples (majority labels include the annotator's own vote).")

st.subheader("Confusion between two annotators")
if report.n_raters >= 2:
    names = dict(zip(report.pairwise.annotator_ids, report.pairwise.annotators, strict=True))
    ids = list(names)
    busiest_a, busiest_b = report.pairwise.most_shared_pair()  # opens on a pair with something to compare
    left, right = st.columns(2)
    first = left.selectbox("Annotator A (rows)", ids, index=busiest_a, format_func=names.__getitem__,
                           key=f"{key}.a")
    second = right.selectbox("Annotator B (columns)", ids, index=busiest_b, format_func=names.__getitem__,
                             key=f"{key}.b")
    try:
        pair = cached_confusion(url, project.id, first, second, version, engine, user)
    except Exception as error:  # noqa: BLE001 - the page shows any failure instead of raising
        st.error(f"The confusion matrix could not be computed: {type(error).__name__}: {error}")
    else:
        agreement_text = "undefined" if pair.agreement != pair.agreement else f"{pair.agreement:.1%}"
        kappa_text = fmt(pair.kappa) + (f" ({pair.reason})" if pair.reason else "")
        st.caption(escape_markdown(f"{pair.n_shared:,} shared items; raw agreement {agreement_text}; Cohen's kappa {kappa_text}"))
        table = pd.DataFrame(pair.counts, index=[f"A: {label}" for label in pair.labels],
                             columns=[f"B: {label}" for label in pair.labels])
        st.dataframe(table, width="stretch", key=f"{key}.confusion")
else:
    st.info("Needs at least two annotators.")

st.subheader("Most disputed items")
if report.disputed:
    st.dataframe(pd.DataFrame([{
        "#": item.example_id,
        "id": item.external_id,
        "status": item.status,
        "ratings": item.n_ratings,
        "distinct labels": item.n_distinct,
        "majority share": f"{item.majority_share:.0%}",
        "entropy (bits)": round(item.entropy, 3),
        "labels": ", ".join(f"{label} ×{n}" for label, n in item.labels.items()),
    } for item in report.disputed]), hide_index=True, width="stretch", key=f"{key}.disputed")
    by_id = {item.example_id: item for item in report.disputed}
    chosen = st.selectbox("Disputed item", list(by_id), format_func=lambda i: f"#{i} · {by_id[i].external_id}",
                          key=f"{key}.item")
    available = (Path(__file__).resolve().parent / Path(ADJUDICATE_PAGE).name).is_file()
    if st.button("Open in adjudication queue", key=f"{key}.open", disabled=not available,
                 help=None if available else "adjudication queue not available"):
        open_in_adjudication(chosen)
else:
    st.caption("No item has two different labels yet.")

show_sources_section(engine, user, project, key, version)  # issue 12: blind items, sources against the experts
show_audits_section(engine, user, project, key)  # issue 12: sampled audits of a source's labels
