"""The Train and Runs pages' "suggest labels with this run" control (issue 12, item 4): a finished
classification run's adapter writes suggestions (source model:run-N) for every item without an expert
label, in a background process (curation.embeddings.suggest.start_suggest_job). The job's state lives in
its job file, so a reload shows the same progress; while it runs, a fragment re-reads it every second."""

from __future__ import annotations

from typing import Any

import streamlit as st
from sqlalchemy.engine import Engine

from curation.embeddings.suggest import read_suggest_job, run_source, start_suggest_job
from curation.errors import CurationError
from curation.models import TrainingRun, User
from ui.widgets import escape_markdown, show_error


def can_suggest(run: TrainingRun) -> bool:
    """Only a finished classification run has an adapter that gives label probabilities."""
    return str(run.task_type) == "classification" and str(run.status) == "succeeded" and bool(run.output_dir)


def run_suggest_control(engine: Engine, user: User, run: TrainingRun, key: str) -> None:
    """A button that starts the run's suggest job, and the job's latest state (live while it runs)."""
    if not can_suggest(run):
        return
    run_id, project_id = int(run.id or 0), int(run.project_id)
    state = read_suggest_job(project_id, run_id)
    running = bool(state and state.get("status") == "running")
    if st.button(f"Suggest labels with run #{run_id}'s adapter", key=f"{key}.suggest_run.{run_id}", disabled=running,
                 help=f"writes a suggestion ({run_source(run_id)}) with its probability for every item without an "
                      "expert label, in the background; annotators see it as the project's suggestion setting says"):
        try:
            start_suggest_job(engine, user, project_id, run_id)
        except CurationError as error:
            show_error(error)
        else:
            st.rerun()  # draw the button disabled and the job's progress
    if not state:
        return
    if state.get("status") == "running":
        @st.fragment(run_every=1.0)
        def _follow() -> None:
            now = read_suggest_job(project_id, run_id) or {}
            if now.get("status") != "running":
                st.rerun()  # done or failed: draw the page with the outcome
            _state_view(run_id, now)

        _follow()
    else:
        _state_view(run_id, state)


def _state_view(run_id: int, state: dict[str, Any]) -> None:
    status = state.get("status")
    if status == "running":
        total, done = int(state.get("total") or 0), int(state.get("done") or 0)
        st.progress(done / total if total else 0.0,
                    text=f"Run #{run_id} suggesting labels: {done:,} / {total:,} texts classified"
                    if total else f"Run #{run_id} suggesting labels: loading the adapter…")
    elif status == "done":
        report = state.get("report") or {}
        st.caption(escape_markdown(f"Run #{run_id}'s adapter suggested labels for {report.get('items', 0):,} items "
                                   f"({report.get('source', run_source(run_id))}); they reach the review screen "
                                   "and the Agreement page's source report."))
    else:
        st.error(escape_markdown(f"Run #{run_id}'s suggest job failed: {state.get('error')}"))
