"""The project's objective: the metric and target a lead states before the data is reviewed, and the
one line every run shows for it (metric, value, interval, target, met or not).

Stored on `Project.objective` as {"metric", "target", "label"?, "format"?, "set_at", "set_by",
"before_review"}; "format" ({"kind": "regex"|"json_schema", "spec"}) goes with format validity.
Human win rate is read from `metrics["preference"]["win_rate"]` ({"value", "low", "high", "n"?}), which a
blind preference round writes into the run's metrics.
`before_review` records whether any annotation existed when it was set: an objective chosen after
looking at the data is said to be so.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from curation.access import audit
from curation.access.roles import LEADS, require_role
from curation.errors import InputError
from curation.evaluation import generation_metrics as gm
from curation.evaluation import stats as es
from curation.lookup import get_or_not_found
from curation.models import Annotation, Example, Project, TaskType, User, utcnow
from curation.retry import run_write

CLASSIFICATION_METRICS = {"accuracy": "Accuracy", "macro_f1": "Macro-F1", "label_f1": "F1 of one label"}
GENERATION_METRICS = {"exact_match": "Exact match", "chrf": "chrF", "rouge_l": "ROUGE-L",
                      "embedding_cosine": "Cosine similarity of sentence embeddings to the reference",
                      "format_validity": "Format validity (a regular expression or a JSON schema)",
                      "human_win_rate": "Win rate in blind human comparison",
                      "test_loss": "Test loss (lower is better)"}
LOWER_IS_BETTER = {"test_loss"}
FORMAT_KINDS = {"regex": "Regular expression (the whole response must match)",
                "json_schema": "JSON schema (the response must be JSON that validates)"}


def metrics_for(task_type: TaskType | str) -> dict[str, str]:
    return GENERATION_METRICS if str(task_type) == TaskType.generation.value else CLASSIFICATION_METRICS


def describe(objective: dict[str, Any]) -> str:
    if not objective:
        return "no objective set"
    metric = objective["metric"] if objective["metric"] != "label_f1" else f"F1 of '{objective.get('label')}'"
    sign = "≤" if objective["metric"] in LOWER_IS_BETTER else "≥"
    late = "" if objective.get("before_review", True) else " (stated after review had begun)"
    fmt = objective.get("format")
    shape = f" (format: {fmt['kind'].replace('_', ' ')} {_short(fmt['spec'])})" if fmt else ""
    return f"{metric} {sign} {objective['target']:g} on the test set{shape}{late}"


def _short(spec: Any, limit: int = 60) -> str:
    text = spec if isinstance(spec, str) else json.dumps(spec, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def set_objective(engine: Engine, actor: User, project_id: int, metric: str, target: float,
                  label: str | None = None, format_kind: str | None = None, format_spec: Any = None) -> Project:
    """State the project's objective (leads and admins). Audited. `format_validity` needs the format
    the responses must have: `format_kind` "regex" or "json_schema" and its `format_spec` (the
    pattern, or the schema as JSON text or a dict); a pattern that does not compile or a schema that
    is not valid is an InputError naming the field `format`."""
    require_role(actor, *LEADS)
    response_format = None
    if metric == "format_validity":
        if not format_kind:
            raise InputError("format validity needs a format: a regular expression or a JSON schema",
                             field="format")
        response_format = gm.parse_format(format_kind, format_spec, field="format").to_dict()

    def work(session: Session) -> Project:
        project = get_or_not_found(session, Project, project_id)
        allowed = metrics_for(project.task_type)
        if metric not in allowed:
            raise InputError(f"metric must be one of {', '.join(allowed)} for a {project.task_type} project",
                             field="metric")
        if metric != "test_loss" and not 0 <= float(target) <= 1:
            raise InputError("the target of a rate must be between 0 and 1", field="target")
        if metric == "label_f1" and label not in project.labels:
            raise InputError(f"label must be one of the project's labels ({', '.join(project.labels)})", field="label")
        reviewed = session.execute(select(func.count()).select_from(Annotation).join(
            Example, Example.id == Annotation.example_id).where(Example.project_id == project_id)).scalar_one()
        before = dict(project.objective or {})
        project.objective = {"metric": metric, "target": float(target), "label": label if metric == "label_f1" else None,
                             "set_at": utcnow().isoformat(), "set_by": actor.username,
                             "before_review": reviewed == 0, **({"format": response_format} if response_format else {})}
        project.updated_at = utcnow()
        session.add(project)
        audit.record(session, actor, "project.objective", "project", project_id, project_id=project_id,
                     before=before or None, after=project.objective)
        return project

    return run_write(engine, work)


def objective_result(objective: dict[str, Any] | None, metrics: dict[str, Any]) -> dict[str, Any] | None:
    """The objective's line for a run's (test) metrics, or None when no objective is set. A metric the
    run does not have gives a line saying so."""

    if not objective:
        return None
    metric = objective["metric"]
    adapter = metrics.get("adapter") or {}
    intervals = adapter.get("intervals") or {}
    name = describe(objective).split(" on the test set")[0].rsplit(" ", 2)[0]
    where = metrics.get("scored_on_text", "")
    if metric == "human_win_rate":
        win = (metrics.get("preference") or {}).get("win_rate")
        if not win:
            return {"metric": name, "target": objective["target"], "met": None,
                    "text": f"{name}: no preference round yet · target {objective['target']:g}"}
        line = es.objective_line(name, es.Interval(float(win["value"]), float(win["low"]), float(win["high"]),
                                                   int(win.get("n", 0))), objective["target"])
        line["text"] = line["text"].replace(" test items", " judged prompts (blind preference round)")
        return line
    if metric == "label_f1":
        interval = (intervals.get("per_label_f1") or {}).get(objective.get("label"))
    elif metric == "test_loss":
        interval = intervals.get("eval_loss")
    else:
        interval = intervals.get(metric)
    if not interval:
        return {"metric": name, "target": objective["target"], "met": None,
                "text": f"{name}: not measured on this run · target {objective['target']:g}"}
    line = es.objective_line(name, es.Interval.from_dict(interval), objective["target"],
                             higher_is_better=metric not in LOWER_IS_BETTER)
    line["text"] = line["text"].replace(" test items", f" items of {where}" if where else " items")
    return line
