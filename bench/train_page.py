"""Benchmark: the Train page's time to an enabled Start button on the demo, against a 2 s budget.

The page is run through Streamlit's AppTest (the same script a browser session runs) on a fresh
DATA_DIR with the demo loaded, as the lead, on the demo project with an approved version:
1. first visit (imports torch and transformers into the server process once; starts the preflight
   in the background);
2. a later visit in a new session (what a reload or a second user gets): the budget applies here;
3. a change of preset (new settings: a new background preflight, the old numbers marked as
   refreshing): the budget applies here too;
4. for reference, how long the background preflight itself took, which the page used to block on.

Prints each time and MET/MISSED against the 2 s budget; exits 1 when missed.
Run: ``python bench/train_page.py`` from the repository root.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BUDGET_S = 2.0


def _start_enabled(at) -> bool:
    return any(b.label == "Start training" and not b.disabled for b in at.button)


def _session(project_id: int):
    from streamlit.testing.v1 import AppTest

    from ui.session import PROJECT_KEY

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=600).run()
    at.text_input[0].input("lead")
    at.text_input[1].input("lead-demo")
    next(b for b in at.button if b.label == "Log in").click().run()
    at.session_state[PROJECT_KEY] = project_id
    return at


def _timed_visit(at) -> float:
    began = time.perf_counter()
    at.switch_page("pages/train.py").run()
    elapsed = time.perf_counter() - began
    assert not at.exception, [e.message for e in at.exception]
    assert _start_enabled(at), [b.label for b in at.button]
    return elapsed


def main() -> int:
    os.environ.update(DATA_DIR=tempfile.mkdtemp(prefix="bench-train-page-"), LOAD_DEMO="true", DATABASE_URL="",
                      ADMIN_USERNAME="", ADMIN_PASSWORD="")
    from sqlmodel import select

    from curation.db import make_engine, read_session
    from curation.models import DatasetVersion
    from curation.settings import get_settings

    get_settings.cache_clear()
    warm = _session(0)  # loads the demo into the fresh database
    engine = make_engine()
    with read_session(engine) as session:
        version = session.exec(select(DatasetVersion).where(DatasetVersion.status == "approved")
                               .order_by(DatasetVersion.id)).first()
    if version is None:  # a demo without one: build and approve the tickets project's (exact checks only)
        version = _approve_demo_version(engine)
    warm.session_state["project.id"] = version.project_id

    first = _timed_visit(warm)
    again = _timed_visit(_session(version.project_id))
    began = time.perf_counter()
    next(r for r in warm.radio if r.label == "Preset").set_value("quick").run()
    change = time.perf_counter() - began
    assert _start_enabled(warm)
    refreshing = any("in the background" in str(i.value) for i in warm.info)

    # The preflight the page now waits for (the quick preset's; the balanced one was abandoned).
    import json

    jobs = sorted((Path(os.environ["DATA_DIR"]) / "jobs").glob("preflight-*.json"), key=lambda p: p.stat().st_mtime)
    state: dict = {}
    while jobs:
        state = json.loads(jobs[-1].read_text(encoding="utf-8"))
        if state.get("status") != "running":
            break
        time.sleep(0.5)
    background = (state.get("updated_at") or 0) - (state.get("started_at") or 0)

    print(f"demo version {version.id} ({version.item_count} items), budget {BUDGET_S:.1f} s to an enabled Start button")
    print(f"first visit (imports torch/transformers once): {first:6.2f} s")
    print(f"later visit, new session:                      {again:6.2f} s  {'MET' if again < BUDGET_S else 'MISSED'}")
    print(f"change of preset:                              {change:6.2f} s  {'MET' if change < BUDGET_S else 'MISSED'}"
          f"  (preflight refreshing in the background: {refreshing})")
    print(f"the background preflight of the quick preset (status {state.get('status')}): {background:6.1f} s, "
          "which the page used to block on")
    met = again < BUDGET_S and change < BUDGET_S
    print("MET" if met else "MISSED", f"ratio to budget: {max(again, change) / BUDGET_S:.2f}")
    return 0 if met else 1


def _approve_demo_version(engine):
    from curation.access.accounts import get_user
    from curation.data.projects import list_projects
    from curation.versions.approve import approve_version
    from curation.versions.build import BuildOptions, create_candidate

    lead = get_user(engine, "lead")
    project = next(p for p in list_projects(engine, lead) if str(p.task_type) == "classification")
    candidate = create_candidate(engine, lead, project.id, BuildOptions(use_embeddings=False))
    print(f"(the demo had no approved version: built and approved v{candidate.number} of {project.name})")
    return approve_version(engine, lead, candidate.id, attest=True, override_reason="bench: demo checks may fail")


if __name__ == "__main__":
    raise SystemExit(main())
