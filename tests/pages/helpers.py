"""Helpers for the Streamlit AppTest page tests: start the app, log in, find widgets by label."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "app.py"
TIMEOUT = 60


def new_app() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


def logged_in(username: str, password: str) -> AppTest:
    """A fresh app session, logged in through the login form (fails the test if the login fails)."""
    at = new_app().run()
    submit_login(at, username, password)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def submit_login(at: AppTest, username: str, password: str) -> AppTest:
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    return by_label(at.button, "Log in").click().run()


def by_label(elements: Iterable[Any], label: str, form: str | None = None) -> Any:
    """The one element of `elements` with this label (and in this form, when given); fails with
    the labels found otherwise."""
    found = [
        e for e in elements if e.label == label and (form is None or getattr(e, "form_id", None) == form)
    ]
    assert len(found) == 1, f"{len(found)} elements labelled {label!r}; labels: {[e.label for e in elements]}"
    return found[0]


def by_label_prefix(elements: Iterable[Any], prefix: str) -> Any:
    found = [e for e in elements if e.label.startswith(prefix)]
    assert len(found) == 1, (
        f"{len(found)} elements labelled {prefix!r}...; labels: {[e.label for e in elements]}"
    )
    return found[0]


_MARKDOWN_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def rendered(text: str) -> str:
    """What markdown shows for `text`: backslash-escaped punctuation as the plain character."""
    return _MARKDOWN_ESCAPE.sub(r"\1", text)


def values(elements: Iterable[Any]) -> list[Any]:
    """Element values as a user reads them (markdown escapes resolved for strings)."""
    return [rendered(e.value) if isinstance(e.value, str) else e.value for e in elements]


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]


def markup_values(at: AppTest) -> list[str]:
    """Every string the run rendered through markdown: markdown, captions, titles, headers,
    alerts and widget labels (which Streamlit also renders as markdown)."""
    out: list[str] = []
    for kind in (
        "markdown",
        "caption",
        "title",
        "header",
        "subheader",
        "error",
        "warning",
        "info",
        "success",
    ):
        out += [str(e.value) for e in getattr(at, kind)]
    for kind in (
        "button",
        "selectbox",
        "multiselect",
        "text_input",
        "text_area",
        "number_input",
        "radio",
        "checkbox",
        "expander",
        "metric",
    ):
        out += [str(e.label) for e in getattr(at, kind)]
    return out


def project_rows(engine: Any) -> list[dict[str, Any]]:
    """Every project as a plain dict of its editable state, by name."""
    from sqlmodel import select

    from curation.db import read_session
    from curation.models import Project

    with read_session(engine) as session:
        projects = session.exec(select(Project).order_by(Project.name)).all()
        return [
            {
                "name": p.name,
                "task_type": str(p.task_type),
                "labels": list(p.labels),
                "guidelines": p.guidelines,
                "guidelines_version": p.guidelines_version,
                "overlap_k": p.overlap_k,
                "final_label_rule": str(p.final_label_rule),
                "min_agreement": p.min_agreement,
            }
            for p in projects
        ]


def counts(engine: Any) -> dict[str, int]:
    """Row counts of the tables an import or a project change writes."""
    from sqlalchemy import func, select

    from curation.db import read_session
    from curation.models import Annotation, AuditEvent, Example, ImportRecord, Project, User

    with read_session(engine) as session:
        return {
            model.__name__: session.execute(select(func.count()).select_from(model)).scalar_one()
            for model in (Project, Example, Annotation, ImportRecord, User, AuditEvent)
        }
