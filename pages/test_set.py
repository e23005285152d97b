"""Test set (leads): the project's frozen yardstick. Build it (a seeded stratified sample, picked
items, or an import), watch its items go through the same blind review, approve it into an
immutable hashed version, and verify any version."""

import pandas as pd
import streamlit as st

from curation.errors import CurationError
from curation.models import Role
from curation.versions import test_sets
from ui.page import open_project_page
from ui.session import flash, show_flash
from ui.widgets import show_error

user, engine, project = open_project_page("Test set", Role.lead, Role.admin)
show_flash()
key = f"testset.{project.id}"
st.caption("Runs are scored once, at their end, on an approved test-set version: never trained on, labelled by "
           "the same blind k-way review, frozen with a SHA-256. Dataset versions leave test items out and are "
           "refused when they hold a copy or near-copy of one.")

existing = test_sets.list_test_sets(engine, project.id)
if not existing:
    with st.form(f"{key}.create"):
        name = st.text_input("Test set name", "test set")
        if st.form_submit_button("Create test set", type="primary"):
            try:
                test_sets.create_test_set(engine, user, project.id, name)
                flash("Test set created.")
                st.rerun()
            except CurationError as error:
                show_error(error)
    st.stop()

test_set = existing[0]
status = test_sets.test_set_status(engine, test_set.id)
c1, c2, c3 = st.columns(3)
c1.metric("Test items", status.items)
c2.metric("Reviewed (labelled)", status.ready)
c3.metric("Waiting for review", status.waiting)
if status.waiting:
    st.info(f"{status.waiting} test items wait for review or adjudication: annotators get them from the Review "
            "queue like any other item, without knowing they are test items.")

tab_add, tab_approve, tab_versions = st.tabs(["Add items", "Approve", "Versions"])
with tab_add:
    with st.form(f"{key}.sample"):
        st.markdown("**Seeded stratified sample** (near-duplicate groups go whole)")
        s1, s2 = st.columns(2)
        size = int(s1.number_input("Sample size", 1, 100_000, 50))
        seed = int(s2.number_input("Seed", 0, 1_000_000, 0))
        labelled_only = st.checkbox("Only items that already have a final label", value=False)
        use_embeddings = st.checkbox("Near-duplicates by sentence embeddings (slower; exact text otherwise)",
                                     value=False)
        if st.form_submit_button("Draw sample"):
            try:
                result = test_sets.sample_items(engine, user, test_set.id, size, seed=seed,
                                                labelled_only=labelled_only, use_embeddings=use_embeddings)
                flash(f"Added {result['added']} items ({result['groups_method']}).")
                st.rerun()
            except CurationError as error:
                show_error(error)
    with st.form(f"{key}.pick"):
        st.markdown("**Pick items** by their ids (one per line)")
        picked = st.text_area("Item ids")
        if st.form_submit_button("Add picked items"):
            try:
                added = test_sets.add_items_by_external_id(engine, user, test_set.id, picked.splitlines())
                flash(f"Added {added} items.")
                st.rerun()
            except CurationError as error:
                show_error(error)
    st.caption("To use a file as test items: import it on the Import page, then run "
               "`python -m curation testset create --project NAME --import-id ID`.")

with tab_approve:
    note = st.text_input("Approval note", key=f"{key}.note")
    if st.button("Approve test-set version", type="primary", key=f"{key}.approve"):
        try:
            version = test_sets.approve_test_set(engine, user, test_set.id, note=note)
            flash(f"Approved {test_sets.version_label(version)}.")
            st.rerun()
        except CurationError as error:
            show_error(error)

with tab_versions:
    versions = test_sets.list_test_set_versions(engine, test_set_id=test_set.id)
    if not versions:
        st.caption("No approved version yet.")
    else:
        st.dataframe(pd.DataFrame([{"version": v.number, "id": v.id, "items": v.item_count,
                                    "SHA-256": v.content_hash, "approved": v.approved_at,
                                    "labels": ", ".join(f"{k} {n}" for k, n in (v.stats.get("labels") or {}).items())}
                                   for v in versions]), hide_index=True)
        chosen = st.selectbox("Verify version", [v.id for v in versions],
                              format_func=lambda i: f"v{next(v.number for v in versions if v.id == i)} (id {i})",
                              key=f"{key}.verify")
        if st.button("Verify", key=f"{key}.verify.button"):
            result = test_sets.verify_test_set_version(engine, chosen)
            (st.success if result.ok else st.error)(result.message)
