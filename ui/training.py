"""Streamlit views of training runs shared by the Train, Runs and Playground pages: live progress
(a fragment that polls the database), metrics against the baselines, and run labels."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from sqlalchemy.engine import Engine

from curation.errors import CurationError
from curation.evaluation import stats as es
from curation.icons import STATUS_ICONS
from curation.models import RunStatus, TrainingRun
from training import jobs
from ui.widgets import escape_markdown

ACTIVE = ("queued", "running")


def run_label(run: TrainingRun) -> str:
    headline = jobs.run_summary(run)["metrics"]
    figure = (f" · acc {headline['accuracy']:.3f}" if "accuracy" in headline else
              f" · eval loss {headline['eval_loss']:.3f}" if "eval_loss" in headline else "")
    return f"#{run.id} {STATUS_ICONS.get(str(run.status), '')} {run.status} · v{run.version_id} · {run.preset}{figure}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m {seconds % 60:02d}s"


def loss_figure(run: TrainingRun) -> go.Figure | None:
    points = run.history or []
    train = [(p["step"], p["loss"]) for p in points if "loss" in p]
    evals = [(p["step"], p["eval_loss"]) for p in points if "eval_loss" in p]
    if not train and not evals:
        return None
    figure = go.Figure()
    if train:
        figure.add_scatter(x=[s for s, _ in train], y=[v for _, v in train], mode="lines", name="train loss")
    if evals:
        figure.add_scatter(x=[s for s, _ in evals], y=[v for _, v in evals], mode="lines+markers", name="eval loss")
    figure.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="step", yaxis_title="loss")
    return figure


def _clock(moment: Any) -> str:
    """Local wall-clock time of a stored UTC timestamp, e.g. '14:03:27'."""
    if moment is None:
        return "—"
    if moment.tzinfo is None:  # SQLite drops the zone; the core stores UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone().strftime("%H:%M:%S")


def cancelling(run: TrainingRun) -> bool:
    """A running run whose cancel was requested: it stops at its next step."""
    return str(run.status) == "running" and run.cancel_requested_at is not None


def progress_view(run: TrainingRun) -> None:
    """Status, progress bar, loss/tokens-per-second/ETA and the loss curve of one run."""
    status = "cancelling" if cancelling(run) else str(run.status)
    st.markdown(f"**Run #{run.id}** {STATUS_ICONS.get(status, '')} `{status}`")
    if status == "cancelling":
        st.warning(f"Cancelling: requested at {_clock(run.cancel_requested_at)}; the run stops at its next step "
                   "(at once while its model is still loading).")
    if run.max_steps:
        st.progress(min(1.0, run.step / run.max_steps), text=f"step {run.step:,} of {run.max_steps:,}")
    elif status == "running":
        st.progress(0.0, text="loading the model and data…")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Loss", "—" if run.loss is None else f"{run.loss:.4f}")
    c2.metric("Tokens/s", "—" if not run.tokens_per_s else f"{run.tokens_per_s:,.0f}")
    c3.metric("ETA", _duration(run.eta_s) if status == "running" else "—")
    c4.metric("Epoch", f"{run.epoch:.2f}")
    figure = loss_figure(run)
    if figure is not None:
        st.plotly_chart(figure, key=f"loss.{run.id}.{status}")
    if status == "failed" and run.error:
        st.error("The run failed. The end of its log:")
        st.code(run.error, language=None)
    elif status == "cancelled":
        st.info(f"Cancelled: stopped at {_clock(run.finished_at)} (step {run.step:,} of {run.max_steps:,}). "
                f"{run.error or ''}".strip())


def _cancel(engine: Engine, run_id: int) -> None:
    from ui.session import current_user

    try:
        jobs.cancel_run(engine, current_user(), run_id)
    except CurationError as error:
        st.toast(str(error))


def live_progress(engine: Engine, run_id: int) -> None:
    """Polls every 2 s while the run is queued or running; reruns the page once when it ends. Cancel
    takes effect before the panel is drawn (a callback), so the panel says "cancelling" at once."""

    @st.fragment(run_every=2)
    def _live() -> None:
        run = jobs.poll(engine, run_id)
        progress_view(run)
        was_active = st.session_state.get(f"runs.active.{run_id}", False)
        active = str(run.status) in ACTIVE
        st.session_state[f"runs.active.{run_id}"] = active
        if active:
            st.button("Cancelling…" if cancelling(run) else "Cancel run", key=f"cancel.{run_id}",
                      disabled=cancelling(run), on_click=_cancel, args=(engine, run_id))
        if was_active and not active:
            st.rerun()

    _live()


def outcome_view(run: TrainingRun) -> None:
    """A finished, failed or cancelled run in brief: outcome, when, headline metrics, a link to it."""
    status = str(run.status)
    st.markdown(f"**Last run: #{run.id}** {STATUS_ICONS.get(status, '')} `{status}` · v{run.version_id} · "
                f"{run.preset} · ended {_clock(run.finished_at)}")
    figures = headline(run)
    if figures:
        columns = st.columns(len(figures))
        for column, (name, value) in zip(columns, figures.items()):
            column.metric(name.replace("_", " "), f"{value:.4f}")
    if status == "succeeded" and (run.metrics or {}).get("beats_baseline") is False:
        st.warning("The adapter does not beat the baseline on the eval split: see the Runs page.")
    if status == "failed":
        st.error("The run failed: its log is on the Runs page.")
    elif status == "cancelled":
        st.info(f"Cancelled: stopped at {_clock(run.finished_at)} (step {run.step:,} of {run.max_steps:,}).")
    st.page_link("pages/runs.py", label=f"Open run #{run.id} on the Runs page", icon="📈",
                 query_params={"run": str(run.id)})


def warnings_view(run: TrainingRun) -> None:
    for warning in run.warnings or []:
        st.error(warning, icon="⚠️")


def dataset_diff_view(diff: dict[str, Any]) -> None:
    """The diff of the two runs' dataset versions beside the score difference: items added, removed
    and relabelled, each list openable."""
    st.caption("Dataset version diff (what curation changed)")
    if "same_version" in diff:
        st.caption(f"Both runs trained on the same version (id {diff['same_version']}).")
        return
    if "error" in diff:
        st.error(diff["error"])
        return
    st.caption(f"{len(diff['added'])} added · {len(diff['removed'])} removed · {len(diff['relabelled'])} relabelled · "
               f"{len(diff['content_changed'])} text changed")
    st.dataframe(pd.DataFrame([{"change": "added", "items": len(diff["added"])},
                               {"change": "removed", "items": len(diff["removed"])},
                               {"change": "relabelled", "items": len(diff["relabelled"])},
                               {"change": "text changed", "items": len(diff["content_changed"])}]), hide_index=True)
    for name in ("added", "removed", "content_changed"):
        if diff[name]:
            with st.expander(f"{name.replace('_', ' ')}: {len(diff[name])} items"):
                st.dataframe(pd.DataFrame({"item": diff[name]}), hide_index=True)
    if diff["relabelled"]:
        with st.expander(f"relabelled: {len(diff['relabelled'])} items"):
            st.dataframe(pd.DataFrame(diff["relabelled"]), hide_index=True)


def metrics_view(run: TrainingRun) -> None:
    metrics = run.metrics or {}
    if not metrics:
        return
    warnings_view(run)
    scored = metrics.get("scored_on") or {}
    if scored.get("role") == "test":
        st.caption(f"Scored once on {scored['text']} (test-set version id {scored['test_set_version_id']}, "
                   f"SHA-256 {scored['content_hash']}); the version's held-out split chose the early stopping only.")
    elif scored:
        st.warning(f"Scored on {scored['text']}.")
    objective = metrics.get("objective")
    if objective:

        text = escape_markdown(f"Objective: {objective['text']}")
        (st.success if objective.get("met") else st.error if objective.get("met") is False else st.info)(text)
    if metrics.get("note"):
        st.info(metrics["note"])
    if str(run.task_type) == "classification" and metrics.get("adapter"):
        rows = []
        for key, name in (("adapter", "LoRA adapter"), ("probe_baseline", "Linear probe (frozen embeddings)"),
                          ("majority_baseline", "Majority class")):
            if metrics.get(key):
                intervals = metrics[key].get("intervals") or {}
                rows.append({"model": name, "accuracy": metrics[key]["accuracy"],
                             "accuracy 95% CI": _ci(intervals.get("accuracy")),
                             "macro-F1": metrics[key]["macro_f1"], "macro-F1 95% CI": _ci(intervals.get("macro_f1")),
                             "adapter vs this": _versus(metrics, key)})
        st.dataframe(pd.DataFrame(rows), hide_index=True)
        where = metrics.get("scored_on_text", "the eval split")
        if metrics.get("beats_baseline"):
            st.success(f"The adapter beats both baselines on {where}: each accuracy difference has an interval "
                       "above 0.")
        labels = metrics.get("labels") or list(metrics["adapter"]["per_label_f1"])
        c1, c2 = st.columns(2)
        with c1:
            st.caption("Per-label F1 (eval split)")
            st.dataframe(pd.DataFrame([{"label": k, "F1": v} for k, v in metrics["adapter"]["per_label_f1"].items()]),
                         hide_index=True)
        with c2:
            st.caption("Confusion matrix (rows: true, columns: predicted)")
            heat = go.Figure(go.Heatmap(z=metrics["adapter"]["confusion"], x=labels, y=labels, colorscale="Blues"))
            heat.update_layout(height=320, margin=dict(l=10, r=10, t=10, b=10), yaxis_autorange="reversed")
            st.plotly_chart(heat, key=f"confusion.{run.id}")
    elif str(run.task_type) == "generation" and metrics.get("adapter"):
        st.dataframe(pd.DataFrame(generation_rows(metrics)), hide_index=True)
        if metrics.get("verdict_text"):
            (st.success if metrics.get("beats_baseline") else st.info)(escape_markdown(metrics["verdict_text"]))
        speed = metrics.get("generation") or {}
        if speed:
            st.caption(f"Generated {speed['items']} responses per model in batches of {speed['batch_size']} with the "
                       f"KV cache (at most {speed['max_new_tokens']} new tokens, JSON answers stop at their end): "
                       f"{speed['tokens_per_s']:,.1f} tokens/s for the adapter on {metrics.get('device', 'cpu')}.")
        for i, sample in enumerate(metrics.get("samples", [])):
            with st.expander(f"Eval prompt {i + 1}"):
                st.text(sample["prompt"][-1]["content"] if sample["prompt"] else "")
                left, right = st.columns(2)
                left.caption("Base")
                left.text(sample["base"])
                right.caption("Adapter")
                right.text(sample["adapter"])
                if sample.get("reference") is not None:
                    st.caption("Reference")
                    st.text(sample["reference"])


GENERATION_COLUMNS = (("exact_match", "exact match"), ("json_valid", "JSON valid"),
                      ("format_validity", "format valid"), ("chrf", "chrF"), ("rouge_l", "ROUGE-L"),
                      ("embedding_cosine", "embedding cosine"), ("eval_loss", "loss"))


def generation_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per metric: base and adapter with their 95% intervals, and the paired difference
    adapter - base with the test's words (loss: lower is better)."""
    rows = []
    comparisons = (metrics.get("comparisons") or {}).get("base") or {}
    for key, name in GENERATION_COLUMNS:
        if key not in (metrics.get("adapter") or {}) or key not in (metrics.get("base") or {}):
            continue
        row = {"metric": name}
        for model in ("base", "adapter"):
            row[model] = round(float(metrics[model][key]), 4)
            row[f"{model} 95% CI"] = _ci((metrics[model].get("intervals") or {}).get(key))
        diff = comparisons.get(key)
        row["adapter - base"] = "—" if not diff else (
            f"{diff['value']:+.3f} [{diff['low']:+.3f}, {diff['high']:+.3f}]: "
            f"{es.verdict(es.Difference.from_dict(diff), higher_is_better=key != 'eval_loss')}")
        rows.append(row)
    return rows


def probability_chart(table: pd.DataFrame) -> go.Figure:
    """Adapter and base probabilities per label as side-by-side bars (grouped, never stacked: two
    probabilities of 0.45 must not read as 0.9). `table`: a label column and one column per model."""
    figure = go.Figure()
    for column in [c for c in table.columns if c != "label"]:
        figure.add_bar(x=table["label"].astype(str).tolist(), y=table[column].tolist(), name=column)
    figure.update_layout(barmode="group", height=320, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                         yaxis={"title": "probability", "range": [0, 1]})
    return figure


def _ci(interval: dict[str, Any] | None) -> str:
    return "—" if not interval else f"[{interval['low']:.3f}, {interval['high']:.3f}]"


def _versus(metrics: dict[str, Any], key: str) -> str:
    """The adapter's accuracy difference against a baseline, with its interval and the test's words."""

    comparison = ((metrics.get("comparisons") or {}).get(key) or {}).get("accuracy")
    if not comparison:
        return "—"
    diff = es.Difference.from_dict(comparison)
    return f"{diff.value:+.3f} [{diff.low:+.3f}, {diff.high:+.3f}]: {es.verdict(diff)}"


def headline(run: TrainingRun) -> dict[str, Any]:
    return jobs.run_summary(run)["metrics"]


def is_active(run: TrainingRun) -> bool:
    return str(run.status) in (RunStatus.queued.value, RunStatus.running.value)
