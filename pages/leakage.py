"""Split leakage (leads): eval items that exactly or nearly duplicate a train item under the examples'
current split, and a split builder that keeps near-duplicate groups on one side, stratified by label."""

from collections import Counter

import pandas as pd
import streamlit as st

from curation.embeddings.dedup import DEFAULT_THRESHOLD
from curation.embeddings.splits import apply_split, build_split, find_leakage
from curation.errors import CurationError
from curation.models import Role
from curation.versions.checklist import count
from curation.versions.test_sets import test_item_ids
from ui.embedding import current_items, freshness, vectors_or_stop
from ui.page import open_project_page
from ui.session import flash, show_flash
from ui.widgets import show_error

user, engine, project = open_project_page("Split leakage", Role.lead, Role.admin)
show_flash()
key = f"leak.{project.id}"

items = current_items(user, project.id)
if len(items) < 2:
    st.info("Leakage needs at least two examples.")
    st.stop()
vectors = vectors_or_stop(project.id, items)
threshold = st.slider(
    "Near-duplicate threshold (cosine)", 0.80, 1.0, DEFAULT_THRESHOLD, 0.01, key=f"{key}.threshold"
)
freshness(items)
by_id = dict(zip(items.ids, range(len(items))))


# Each of these takes seconds at 100k examples (a near-duplicate search, eval x train similarities);
# they depend only on the data (its fingerprint) and the settings in their keys, so reruns reuse them.
@st.cache_data(max_entries=16, show_spinner="Comparing eval and train items...")
def _leaks(fingerprint: str, threshold: float, which: str, _split, _items, _vectors) -> list:
    return find_leakage(_split, _items.ids, _items.texts, _vectors, threshold=threshold)


@st.cache_data(max_entries=8, show_spinner="Building the split...")
def _built_split(fingerprint: str, threshold: float, fraction: float, seed: int, _items, _vectors) -> dict:
    return build_split(_items.ids, _items.labels, _items.texts, _vectors, eval_fraction=fraction, seed=seed,
                       threshold=threshold)

st.subheader("Current split")
sides = Counter(s or "(none)" for s in items.splits)
st.caption(" · ".join(f"{side}: {n:,}" for side, n in sorted(sides.items())))
if "train" not in sides or not [s for s in sides if s not in ("train", "(none)")]:
    st.info("The examples have no train/eval split yet (a `split` column at import, or the builder below).")
else:
    leaks = _leaks(items.fingerprint, threshold, "current split", dict(zip(items.ids, items.splits)), items, vectors)
    if leaks:
        st.error(f"{count(len(leaks), 'eval item')} {'duplicates' if len(leaks) == 1 else 'duplicate'} a train item.")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "eval #": leak.eval_id,
                        "side": leak.eval_side,
                        "eval text": items.texts[by_id[leak.eval_id]],
                        "train #": leak.train_id,
                        "train text": items.texts[by_id[leak.train_id]],
                        "kind": leak.kind,
                        "cosine": round(leak.similarity, 3),
                    }
                    for leak in leaks
                ]
            ),
            hide_index=True,
            width="stretch",
        )
    else:
        st.success("No eval item duplicates a train item at this threshold.")

st.subheader("Test items")
test_ids = test_item_ids(engine, project.id)
if not test_ids:
    st.info("The project has no test set yet: runs are scored on each version's own held-out split, which moves "
            "with the data. Build one with `python -m curation testset create`.")
else:
    test_leaks = _leaks(items.fingerprint, threshold, f"test items {hash(frozenset(test_ids))}",
                        {i: "test" if i in test_ids else "train" for i in items.ids}, items, vectors)
    if test_leaks:
        st.error(f"{len(test_leaks)} test items are duplicated by an item that could be trained on. A dataset "
                 "version containing such an item is refused (this check cannot be overridden): exclude it.")
        st.dataframe(pd.DataFrame([{"test #": leak.eval_id, "test text": items.texts[by_id[leak.eval_id]],
                                    "duplicate #": leak.train_id, "duplicate text": items.texts[by_id[leak.train_id]],
                                    "kind": leak.kind, "cosine": round(leak.similarity, 3)} for leak in test_leaks]),
                     hide_index=True, width="stretch")
    else:
        st.success(f"0 items duplicate one of the {len(test_ids):,} test items at this threshold.")

st.subheader("Split builder")
c1, c2 = st.columns(2)
fraction = c1.slider("Eval share", 0.05, 0.5, 0.2, 0.05, key=f"{key}.fraction")
seed = int(c2.number_input("Seed", 0, 1_000_000, 0, key=f"{key}.seed"))
split = _built_split(items.fingerprint, threshold, fraction, seed, items, vectors)
counts = Counter((label or "(unlabelled)", split[i]) for i, label in zip(items.ids, items.labels))
table = pd.DataFrame(
    [
        {"label": label, "train": counts.get((label, "train"), 0), "eval": counts.get((label, "eval"), 0)}
        for label in sorted({label for label, _ in counts})
    ]
)
st.dataframe(table, hide_index=True)
left = _leaks(items.fingerprint, threshold, f"built split {fraction} {seed}", split, items, vectors)
st.caption(f"Near-duplicate groups stay on one side: {len(left)} leaks in this split.")
if st.button("Apply this split to the examples", key=f"{key}.apply"):
    try:
        changed = apply_split(engine, user, project.id, split)
        flash(f"Split applied to {changed} examples.")
        st.rerun()
    except CurationError as error:
        show_error(error)
