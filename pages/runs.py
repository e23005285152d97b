"""Runs (leads): every training run of the project, one run's details (live while it runs), and a
comparison of two runs: settings diff, metric diff and dataset version diff."""

import pandas as pd
import streamlit as st

from curation.errors import CurationError
from curation.icons import STATUS_ICONS
from curation.models import Role
from training import jobs
from training.config import TrainConfig
from training.test_scoring import compare_runs
from ui.links import link_caption, requested_id, show_in_url
from ui.page import open_project_page
from ui.preference import run_preference_view
from ui.run_suggest import run_suggest_control
from ui.session import switch_project
from ui.sources import show_suggest_section
from ui.training import (
    dataset_diff_view,
    headline,
    is_active,
    live_progress,
    metrics_view,
    progress_view,
    run_label,
)
from ui.widgets import show_json

user, engine, project = open_project_page("Runs", Role.lead, Role.admin)
key = f"runs.{project.id}"
jobs.dispatch(engine)
asked = requested_id("runs", "run")  # ?run=7: a link (or a reload) opens that run
if asked is not None:
    try:
        asked_run = jobs.get_run(engine, asked)
    except CurationError as error:
        st.warning(str(error))
    else:
        st.session_state[f"runs.{asked_run.project_id}.run"] = asked_run.id
        if asked_run.project_id != project.id:
            switch_project(asked_run.project_id)
            st.rerun()
show_suggest_section(engine, user, project, key)  # issue 12: model pre-labels (linear probe) in the background
runs = jobs.list_runs(engine, project.id)
if not runs:
    st.info("No training runs yet. Start one on the Train page.")
    st.stop()

st.dataframe(pd.DataFrame([{
    "#": r.id, "status": f"{STATUS_ICONS.get(str(r.status), '')} {r.status}", "version": r.version_id,
    "preset": r.preset, "base": r.base_model, "step": f"{r.step}/{r.max_steps}",
    **{k: round(v, 4) for k, v in headline(r).items()},
    "scored on": ((r.metrics or {}).get("scored_on") or {}).get("text", "—")[:40],
    "objective": ((r.metrics or {}).get("objective") or {}).get("text", "—"),
    "beats baseline": (r.metrics or {}).get("beats_baseline"),
    "created": r.created_at,
} for r in runs]), hide_index=True)

by_id = {r.id: r for r in runs}
tab_detail, tab_compare = st.tabs(["Details", "Compare two runs"])
with tab_detail:
    chosen = st.selectbox("Run", list(by_id), format_func=lambda i: run_label(by_id[i]), key=f"{key}.run")
    run = by_id[chosen]
    show_in_url("runs", "run", run.id)
    link_caption("run", run.id, "run")
    if is_active(run):
        live_progress(engine, run.id)
    else:
        progress_view(run)
        metrics_view(run)
        run_preference_view(run)  # issue 11: the blind human preference round's result, when there is one
        run_suggest_control(engine, user, run, key)  # issue 12: the adapter's pre-labels, in the background
        if run.adapter_path:
            st.caption(f"Adapter (PEFT format): {run.adapter_path}")
            if run.merged_path:
                st.caption(f"Merged model: {run.merged_path}")
    with st.expander("Settings"):
        show_json({"base_model": run.base_model, "preset": run.preset, **(run.config or {})})

with tab_compare:
    if len(runs) < 2:
        st.info("Two runs are needed for a comparison.")
    else:
        ids = list(by_id)
        c1, c2 = st.columns(2)
        a = c1.selectbox("Run A", ids, index=1, format_func=lambda i: run_label(by_id[i]), key=f"{key}.a")
        b = c2.selectbox("Run B", ids, index=0, format_func=lambda i: run_label(by_id[i]), key=f"{key}.b")
        ra, rb = by_id[a], by_id[b]
        settings = {"base_model": (ra.base_model, rb.base_model), "preset": (ra.preset, rb.preset),
                    **TrainConfig.from_dict(ra.config).diff(TrainConfig.from_dict(rb.config))}
        settings = {k: v for k, v in settings.items() if v[0] != v[1]}
        st.subheader("Settings diff")
        if settings:
            st.dataframe(pd.DataFrame([{"setting": k, "A": str(x), "B": str(y)} for k, (x, y) in settings.items()]),
                         hide_index=True)
        else:
            st.caption("Same settings.")
        st.subheader("Metric diff")
        ha, hb = headline(ra), headline(rb)
        comparison = compare_runs(engine, user, ra, rb) if not (is_active(ra) or is_active(rb)) else None
        if comparison and comparison["comparable"]:
            st.caption(f"Paired on the same items: {comparison['scored_on']['a'].get('text')}. B − A with its 95% "
                       "interval; the words follow the test.")
            st.dataframe(pd.DataFrame([{"metric": m, "A": d["a"], "B": d["b"], "B − A": d["value"],
                                        "95% CI": f"[{d['low']:+.4f}, {d['high']:+.4f}]", "test": d["test"],
                                        "p": d["p_value"], "verdict": d["verdict"]}
                                       for m, d in comparison["metrics"].items()]), hide_index=True)
            for m, d in comparison["metrics"].items():  # the table is a canvas: the same in words, readable at a glance
                st.text(f"{m}: B − A = {d['value']:+.4f}, 95% CI [{d['low']:+.4f}, {d['high']:+.4f}]: {d['verdict']}")
            if comparison.get("per_label_f1"):
                left, right = st.columns(2)
                with left:
                    st.caption("Per-label F1, B − A (paired bootstrap)")
                    st.dataframe(pd.DataFrame([{"label": label, "A": d["a"], "B": d["b"], "B − A": d["value"],
                                                "95% CI": f"[{d['low']:+.3f}, {d['high']:+.3f}]",
                                                "verdict": d["verdict"]}
                                               for label, d in comparison["per_label_f1"].items()]), hide_index=True)
                with right:
                    dataset_diff_view(comparison["dataset_diff"])
            else:
                dataset_diff_view(comparison["dataset_diff"])
        else:
            if comparison:
                st.warning(comparison["reason"])
            rows = [{"metric": m, "A": ha.get(m), "B": hb.get(m),
                     "B − A": (hb[m] - ha[m]) if m in ha and m in hb else None} for m in sorted(set(ha) | set(hb))]
            if rows:
                st.dataframe(pd.DataFrame(rows), hide_index=True)
            else:
                st.caption("No metrics yet (runs not finished).")
            if comparison:
                dataset_diff_view(comparison["dataset_diff"])
