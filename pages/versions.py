"""Dataset versions (leads): the list, building a candidate with its checklist, approval, diff and export."""

import tempfile
from dataclasses import fields
from pathlib import Path

import pandas as pd
import streamlit as st

from curation.data.export import zip_folder
from curation.errors import CurationError
from curation.icons import STATUS_ICONS
from curation.models import Role, VersionStatus
from curation.settings import get_settings
from curation.versions.approve import approve_version, blocking_items, edits_since
from curation.versions.build import BuildOptions, create_candidate, discard_candidate
from curation.versions.checklist import AREAS, ChecklistThresholds, items_of, overridden_summary
from curation.versions.diff import diff_versions
from curation.versions.export import (
    VERSION_EXPORT_FORMATS,
    export_version,
    push_version_to_hub,
)
from curation.versions.records import (
    get_version,
    list_versions,
    usernames,
    verify_version,
    version_items,
    version_label,
)
from ui.links import link_caption, requested_id, show_in_url
from ui.page import open_project_page
from ui.session import flash, show_flash, switch_project
from ui.widgets import escape_markdown, show_error

user, engine, project = open_project_page("Dataset versions", Role.lead, Role.admin)
show_flash()
key = f"versions.{project.id}"
TABS = ["Versions", "Build candidate", "Checklist and approval", "Diff", "Export"]
if f"{key}.pending" in st.session_state:  # a candidate was just built: show it
    st.session_state[f"{key}.selected"] = st.session_state.pop(f"{key}.pending")
    st.session_state[f"{key}.tab"] = "Checklist and approval"

versions = list_versions(engine, user, project.id)
by_id = {v.id: v for v in versions}
asked = requested_id("versions", "version")  # ?version=3: a link (or a reload) opens that version
if asked is not None:
    try:
        asked_version = get_version(engine, asked)
    except CurationError as error:
        st.warning(str(error))
    else:
        st.session_state[f"versions.{asked_version.project_id}.selected"] = asked_version.id
        st.session_state[f"versions.{asked_version.project_id}.tab"] = "Checklist and approval"
        if asked_version.project_id != project.id:
            switch_project(asked_version.project_id)
            st.rerun()
people = usernames(engine, [v.created_by_id for v in versions] + [v.approved_by_id for v in versions])


def overrides_banner(chosen: list) -> None:
    """Every approval override is shown wherever its version appears."""
    for version in chosen:
        if version.override_reason:
            st.warning(escape_markdown(f"v{version.number} was approved with an override of "
                                       f"{overridden_summary(version.checklist or {})}. Reason: "
                                       f"{version.override_reason}"), icon="⚠️")


# A keyed tab bar keeps its selection across reruns (approve, prepare export).
tab_list, tab_build, tab_check, tab_diff, tab_export = st.tabs(TABS, key=f"{key}.tab", on_change="rerun")

with tab_list:
    if not versions:
        st.info("No version yet: build a candidate.")
    else:
        st.dataframe(pd.DataFrame([{
            "version": v.number,
            "status": str(v.status),
            "items": v.item_count,
            "train": (v.stats or {}).get("splits", {}).get("train", 0),
            "eval": (v.stats or {}).get("splits", {}).get("eval", 0),
            "sha256": v.content_hash,
            "created by": people.get(v.created_by_id, ""),
            "created at": v.created_at,
            "approved by": people.get(v.approved_by_id, "") if v.approved_by_id else "",
            "approved at": v.approved_at,
            "note": v.approval_note,
            "override reason": v.override_reason or "",
        } for v in versions]), hide_index=True, width="stretch")
        overrides_banner(versions)

with tab_build:
    st.caption("Snapshots the project's current state: final labels or responses after adjudication; excluded, "
               "disputed and unlabelled items left out; exact duplicates collapsed; a seeded train/eval split "
               "that keeps near-duplicate groups on one side and stratifies by label.")
    with st.form(f"{key}.build"):
        c1, c2, c3 = st.columns(3)
        eval_fraction = c1.number_input("Eval fraction", 0.05, 0.5, 0.2, 0.05)
        seed = c2.number_input("Split seed", 0, 2**31 - 1, 0, 1)
        keep = c3.checkbox("Keep imported train/eval splits",
                           help="items imported with a split (train, eval, validation, test) keep it")
        embeddings = st.checkbox("Use sentence embeddings", True,
                                 help="near-duplicates above the similarity threshold, clusters and suspected label "
                                      "errors (cached; off: exact duplicates only)")
        values = {}
        with st.expander("Checklist thresholds"):
            helps = ChecklistThresholds.help()
            defaults = ChecklistThresholds()
            for item in fields(ChecklistThresholds):
                default = getattr(defaults, item.name)
                label = item.name.replace("_", " ").capitalize()
                if item.name == "min_agreement":
                    values[item.name] = st.number_input(label, 0.0, 1.0, float(project.min_agreement), 0.01,
                                                        help=helps[item.name])
                elif item.name == "max_near_duplicate_pairs":
                    values[item.name] = int(st.number_input(label, 0, 10**9, int(project.max_near_duplicate_pairs),
                                                            1, help=helps[item.name]))
                elif item.name == "tokenizer":
                    values[item.name] = st.text_input(label, "", help=helps[item.name]).strip() or None
                elif isinstance(default, bool):
                    values[item.name] = st.checkbox(label, default, help=helps[item.name])
                elif isinstance(default, int):
                    values[item.name] = int(st.number_input(label, 0, 10**9, default, 1, help=helps[item.name]))
                else:
                    values[item.name] = float(st.number_input(label, 0.0, 1.0, float(default), 0.01,
                                                              help=helps[item.name]))
        build = st.form_submit_button("Build candidate", type="primary")
    if build:
        try:
            with st.spinner("Building the candidate and measuring its checklist..."):
                version = create_candidate(engine, user, project.id,
                                           BuildOptions(eval_fraction=float(eval_fraction), seed=int(seed),
                                                        keep_existing_splits=keep, use_embeddings=embeddings),
                                           ChecklistThresholds(**values))
            st.session_state[f"{key}.pending"] = version.id
            flash(f"Built candidate v{version.number} with {version.item_count} items: open "
                  "'Checklist and approval'.")
            st.rerun()
        except CurationError as error:
            show_error(error)

with tab_check:
    if not versions:
        st.info("No version yet: build a candidate.")
    else:
        if st.session_state.get(f"{key}.selected") not in by_id:
            st.session_state[f"{key}.selected"] = versions[0].id
        chosen_id = st.selectbox("Version", list(by_id), format_func=lambda i: version_label(by_id[i]),
                                 key=f"{key}.selected")
        version = by_id[chosen_id]
        show_in_url("versions", "version", version.id)
        link_caption("version", version.id, "version")
        overrides_banner([version])
        stats = version.stats or {}
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("Status", str(version.status))
        c2.metric("Items", version.item_count)
        c3.metric("Train / eval", f"{stats.get('splits', {}).get('train', 0)} / {stats.get('splits', {}).get('eval', 0)}")
        c4.metric("Left out", sum((stats.get("left_out") or {}).values()))
        st.caption("SHA-256 of the items")
        st.code(version.content_hash, language=None)
        if version.status == VersionStatus.approved:
            st.caption(f"Approved by {people.get(version.approved_by_id, '?')} at {version.approved_at}")
            if version.approval_note:
                st.text(version.approval_note)
        if st.button("Verify hash", key=f"{key}.verify"):
            result = verify_version(engine, user, version.id)
            (st.success if result.ok else st.error)(result.message)
        items = items_of(version.checklist or {})
        st.subheader("Checklist")
        st.dataframe(pd.DataFrame([{
            "area": AREAS.get(i.area, i.area), "check": i.name, "status": f"{STATUS_ICONS.get(i.status, '')} {i.status}",
            "value": i.value, "threshold": i.threshold, "detail": i.detail} for i in items]),
            hide_index=True, width="stretch", height=35 * (len(items) + 1) + 3)  # every item without scrolling
        with st.expander("Statistics"):
            st.json(stats, expanded=False)
        with st.expander("Items (first 500)"):
            rows = version_items(engine, user, version.id, limit=500)
            st.dataframe(pd.DataFrame([{"id": r.external_id, "split": r.split, "label": r.label or "",
                                        "content": r.text if r.text is not None else
                                        " | ".join(f"{m['role']}: {m['content']}" for m in r.messages or []),
                                        "source": r.source or "", "licence": r.licence or ""} for r in rows]),
                         hide_index=True, width="stretch")
        if version.status == VersionStatus.candidate:
            st.subheader("Approve")
            stale = edits_since(engine, user, version)
            if stale:
                st.info(f"{stale} examples changed after this candidate was built. Approving approves the items "
                        "as built; build a new candidate to include the changes.")
            blocking = [i for i in items if i.key in blocking_items(version, attest=True)]
            if blocking:
                st.error("Failing checks block approval unless you override them with a written reason: "
                         + "; ".join(f"{i.name} ({i.value})" for i in blocking))
            with st.form(f"{key}.approve"):
                attest = st.checkbox("I attest that these items fit the project's task")
                note = st.text_area("Approval note")
                override = st.text_area("Override reason (needed when a check fails)",
                                        help="stored with the version and shown wherever it appears")
                approve = st.form_submit_button("Approve version", type="primary")
            if approve:
                try:
                    approved = approve_version(engine, user, version.id, note=note, attest=attest,
                                               override_reason=override)
                    flash(f"Approved v{approved.number} (SHA-256 {approved.content_hash}).")
                    st.rerun()
                except CurationError as error:
                    show_error(error)
            if st.button("Discard this candidate", key=f"{key}.discard"):
                try:
                    discard_candidate(engine, user, version.id)
                    flash(f"Discarded candidate v{version.number}.")
                    st.rerun()
                except CurationError as error:
                    show_error(error)

with tab_diff:
    if len(versions) < 2:
        st.info("A diff needs two versions.")
    else:
        ids = list(by_id)
        c1, c2 = st.columns(2)
        a = c1.selectbox("From version", ids, index=1, format_func=lambda i: version_label(by_id[i]), key=f"{key}.a")
        b = c2.selectbox("To version", ids, index=0, format_func=lambda i: version_label(by_id[i]), key=f"{key}.b")
        overrides_banner([by_id[a], by_id[b]])
        diff = diff_versions(engine, user, a, b)
        m1, m2, m3, m4 = st.columns(4)
        m1.metric("Added", len(diff.added))
        m2.metric("Removed", len(diff.removed))
        m3.metric("Relabelled", len(diff.relabelled))
        m4.metric("Content changed", len(diff.content_changed))
        if diff.relabelled:
            st.caption("Relabelled")
            st.dataframe(pd.DataFrame(diff.relabelled), hide_index=True)
        for title, ids_ in (("Added", diff.added), ("Removed", diff.removed), ("Content changed", diff.content_changed)):
            if ids_:
                st.caption(title)
                st.dataframe(pd.DataFrame({"id": ids_}), hide_index=True)
        if diff.moved:
            st.caption("Moved between splits")
            st.dataframe(pd.DataFrame(diff.moved), hide_index=True)
        st.caption("Changed statistics" if diff.stats else "No statistic or checklist status changed.")
        if diff.stats:
            st.dataframe(pd.DataFrame([{"statistic": k, "from": str(v["a"]), "to": str(v["b"]),
                                        "change": "" if v["change"] is None else str(v["change"])}
                                       for k, v in diff.stats.items()]), hide_index=True, width="stretch")

with tab_export:
    approved = [v for v in versions if v.status == VersionStatus.approved]
    if not approved:
        st.info("Only approved versions are exported: approve a candidate first.")
    else:
        export_id = st.selectbox("Version to export", [v.id for v in approved],
                                 format_func=lambda i: version_label(by_id[i]), key=f"{key}.export_id")
        overrides_banner([by_id[export_id]])
        formats = st.multiselect("Formats", VERSION_EXPORT_FORMATS, default=list(VERSION_EXPORT_FORMATS), key=f"{key}.formats",
                                 help="hf: DatasetDict folder (save_to_disk); jsonl and parquet: one file per split; "
                                      "a dataset card (README.md) always comes with them")
        if st.button("Prepare export", key=f"{key}.prepare"):
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    out = Path(tmp) / f"{project.name}-v{by_id[export_id].number}".replace("/", "_").replace(" ", "_")
                    export_version(engine, user, export_id, out, formats)
                    name, data = zip_folder(out)
                    st.session_state[f"{key}.download"] = (export_id, name, data)
            except CurationError as error:
                show_error(error)
        ready = st.session_state.get(f"{key}.download")
        if ready and ready[0] == export_id:
            st.download_button(f"Download {ready[1]}", ready[2], file_name=ready[1], mime="application/zip",
                               on_click="ignore", key=f"{key}.download_button")
        if get_settings().hf_token:
            with st.form(f"{key}.push"):
                repo = st.text_input("Hub dataset repository (owner/name)")
                push = st.form_submit_button("Push to the Hub")
            if push:
                try:
                    url = push_version_to_hub(engine, user, export_id, repo)
                    st.success(f"Pushed to {url}")
                except CurationError as error:
                    show_error(error)
        else:
            st.caption("Set HF_TOKEN to push approved versions to the Hugging Face Hub.")
