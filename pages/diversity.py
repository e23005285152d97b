"""Diversity (leads): a 2-D map of the examples coloured by label, cluster, status or agreement (hover
shows the text), clusters with size, label mix, samples and top terms, coverage and text lengths.

The map and clusters are computed in a background process per data fingerprint, k and map method
(curation/diversity_job.py), whose finished result is the cache: the page never blocks on UMAP or
k-means, shows progress while they run (also after a reload), and a change of colour is instant."""

import html

import pandas as pd
import plotly.express as px
import streamlit as st

from curation.embeddings.diversity import agreement_by_example, annotation_stamp, default_k
from curation.embeddings.diversity_job import diversity_state
from curation.models import Role
from ui.embedding import current_items, freshness, vectors_or_stop, wait_for_task
from ui.page import open_project_page

user, engine, project = open_project_page("Diversity", Role.lead, Role.admin)
key = f"div.{project.id}"

items = current_items(user, project.id)
if len(items) < 2:
    st.info("The map needs at least two examples.")
    st.stop()
vectors_or_stop(project.id, items)  # every text embedded (or the embedding job's panel, and stop)

c1, c2, c3 = st.columns(3)
colour = c1.selectbox("Colour by", ["label", "cluster", "status", "agreement"], key=f"{key}.colour")
k = c2.number_input(
    "Clusters (k-means)",
    2,
    min(60, max(2, len(items))),
    min(default_k(len(items)), len(items)),
    key=f"{key}.k",
)
method = c3.selectbox(
    "Map", ["auto", "umap", "pca"], key=f"{key}.method", help="auto: UMAP from 30 examples on, PCA below"
)
state = diversity_state(project.id, items.fingerprint, int(k), method)
freshness(items)
wait_for_task(state, lambda: diversity_state(project.id, items.fingerprint, int(k), method, start=False),
              what="Computing the map",
              waiting="Computing the map and the clusters in the background; they appear here when ready "
                      "(you may leave or reload this page).")
report = state["result"]


# Building a plotly figure costs ~0.5 s; the figures depend only on the data (its fingerprint), the
# computed result and the colour, so a rerun (another colour, a reload, another lead) reuses them.
# Resources, not data: unpickling a 20k-point figure on every rerun cost ~0.2 s, and st.plotly_chart
# only reads a figure (it serialises a copy).
@st.cache_resource(max_entries=32, show_spinner=False)
def _map_figure(fingerprint: str, stamp: str, k: int, method: str, colour: str, _items, _report, _agreement):
    coords, assignments = _report["coords"], _report["assignments"]
    rows = _report.get("map_rows") or range(len(coords))  # results from before map_rows drew every item
    frame = pd.DataFrame(
        {
            "x": [x for x, _ in coords],
            "y": [y for _, y in coords],
            "id": [_items.external_ids[i] for i in rows],
            "label": [_items.labels[i] or "(unlabelled)" for i in rows],
            "cluster": [str(assignments[i]) for i in rows],
            "status": [_items.statuses[i] for i in rows],
            "agreement": [_agreement.get(_items.ids[i]) for i in rows],
            # plotly renders a subset of HTML in hover labels: escape, so dataset text shows literally
            "text": [html.escape(_items.texts[i][:300]) for i in rows],
        }
    )
    shown = f"{len(_items):,} examples" if len(rows) == len(_items) else (
        f"{len(rows):,} of {len(_items):,} examples (a random sample; clusters and coverage use all)")
    return px.scatter(
        frame,
        x="x",
        y="y",
        color=colour,
        hover_data={"id": True, "text": True, "label": True, "x": False, "y": False},
        title=f"{_report['method'].upper()} map of {shown}",
    )


@st.cache_resource(max_entries=32, show_spinner=False)
def _lengths_figure(fingerprint: str, k: int, method: str, _report):
    lengths = pd.DataFrame(
        [{"label": label, "words": n} for label, values in _report["lengths"].items() for n in values]
    )
    return px.histogram(lengths, x="words", color="label", barmode="overlay", nbins=40)


@st.cache_data(max_entries=8, show_spinner=False)
def _agreement(project_id: int, stamp: str) -> dict[int, float]:
    return agreement_by_example(engine, project_id)  # the stamp only keys the cache


stamp = annotation_stamp(engine, project.id)
agreement = _agreement(project.id, stamp)
figure = _map_figure(items.fingerprint, stamp, int(k), method, colour, items, report, agreement)
st.plotly_chart(figure, width="stretch", key=f"{key}.map")

st.subheader("Coverage")
m1, m2, m3, m4 = st.columns(4)
m1.metric("Labels in use", len(report['label_counts']))
m2.metric("Label balance", f"{report['label_balance']:.2f}", help="normalised entropy: 1 = equal counts")
m3.metric(
    "Effective clusters",
    f"{report['effective_clusters']:.1f} of {len(report['clusters'])}",
    help="exp(entropy of cluster sizes): k when all clusters are the same size",
)
m4.metric("Under-covered clusters", sum(c["under_covered"] for c in report["clusters"]), help="fewer than half the mean cluster size")
if report['label_counts']:
    st.dataframe(
        pd.DataFrame(
            [
                {"label": label, "examples": n, "share": round(n / sum(report['label_counts'].values()), 3)}
                for label, n in report['label_counts'].items()
            ]
        ),
        hide_index=True,
    )

st.subheader("Clusters")
st.dataframe(
    pd.DataFrame(
        [
            {
                "cluster": c['cluster_id'],
                "size": c['size'],
                "under-covered": c['under_covered'],
                "label mix": ", ".join(f"{label} {n}" for label, n in c['label_mix'].items()),
                "top terms": ", ".join(c['top_terms']),
            }
            for c in report['clusters']
        ]
    ),
    hide_index=True,
    width="stretch",
)
for c in report['clusters']:
    with st.expander(
        f"Cluster {c['cluster_id']}: {c['size']} examples{' · under-covered' if c['under_covered'] else ''}"
    ):
        for sample in c['samples']:
            st.text(sample)

st.subheader("Lengths (words)")
st.plotly_chart(
    _lengths_figure(items.fingerprint, int(k), method, report),
    width="stretch",
    key=f"{key}.lengths",
)
