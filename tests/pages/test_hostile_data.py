"""Every page, opened by a lead (and the Users page by an admin) on a project whose labels, ids,
sources, licences, metadata, annotator names and override reason are markdown and HTML: nothing
from the data reaches the browser as markup (issue 14). Each string Streamlit renders as markdown
(markdown, captions, titles, alerts, widget labels and help, expander and tab labels) is rendered
here with a CommonMark parser that allows raw HTML, and the result must hold no image, no link and
none of the data's emphasis; chart specs must hold no HTML tag from the data either."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from markdown_it import MarkdownIt
from sqlalchemy.engine import Engine
from streamlit.testing.v1 import AppTest

from curation.data.formats import open_table
from curation.data.importer import import_table
from curation.data.mapping import ColumnMapping
from curation.data.projects import create_project
from curation.embeddings.encode import read_project_items
from curation.models import User
from curation.settings import get_settings
from curation.versions.approve import approve_version
from curation.versions.build import BuildOptions, create_candidate
from tests.curation.embedding_helpers import fill_cache, unit
from tests.pages.helpers import logged_in
from ui.session import PROJECT_KEY

BEACON = "![x](http://host/beacon.png)"
IMG = "<img src=x>"
LINK = "[a](http://x)"
BOLD = "**b**"
HOSTILE = [BEACON, IMG, LINK, BOLD]

# The Train page is left out here only because its preflight measures a real base model for ~50 s in the
# page run (issue 14 item 6 moves it to the background); its strings from data are the version label
# and the approver's username.
LEAD_PAGES = ["projects", "import_data", "browse", "agreement", "versions", "review", "adjudicate", "audit",
              "duplicates", "diversity", "label_issues", "leakage", "runs", "playground"]
ADMIN_PAGES = ["users"]

_MARKDOWN = MarkdownIt("commonmark", {"html": True})
_FOUND = ("<img", "<a ", "<strong>b</strong>")


@pytest.fixture(autouse=True)
def test_vectors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDDING_MODEL", "test-vectors")
    get_settings.cache_clear()


@pytest.fixture
def hostile(engine: Engine, lead: User, admin: User, tmp_path: Path) -> int:
    """12 items whose ids, texts, sources, licences and metadata are the hostile strings, labelled by
    two annotators (one named like a link) with the hostile labels; a few disagree; an approved
    version with an override reason quoting the data; embeddings in the cache."""
    project = create_project(engine, lead, "Hostile", labels=HOSTILE, overlap_k=2)
    assert project.id is not None
    wide = tmp_path / "wide.jsonl"
    wide.write_text("".join(json.dumps({  # the last item has no licence: that check fails, so the approval
        "id": f"{HOSTILE[i % 4]} #{i}", "text": f"{HOSTILE[i % 4]} text {i}", "source": HOSTILE[(i + 1) % 4],
        "licence": HOSTILE[(i + 2) % 4] if i < 11 else None, "note": HOSTILE[(i + 3) % 4]}) + "\n"
        for i in range(12)))
    import_table(engine, lead, open_table(wide), ColumnMapping(id=["id"], text="text", source="source",
                                                               licence="licence", metadata=["note"]), "Hostile")
    votes = tmp_path / "votes.jsonl"
    rows = []
    for i in range(12):
        rows.append({"id": f"{HOSTILE[i % 4]} #{i}", "annotator": "ann1", "label": HOSTILE[i % 4]})
        other = HOSTILE[(i + 1) % 4] if i in (3, 7) else HOSTILE[i % 4]  # two disputes
        rows.append({"id": f"{HOSTILE[i % 4]} #{i}", "annotator": LINK, "label": other})
    votes.write_text("".join(json.dumps(r) + "\n" for r in rows))
    import_table(engine, lead, open_table(votes), ColumnMapping(id=["id"], annotator="annotator", label="label"),
                 "Hostile")
    items = read_project_items(engine, project.id)
    fill_cache(items.texts, unit(np.random.default_rng(0).normal(size=(len(items), 16))))
    version = create_candidate(engine, lead, project.id, BuildOptions(use_embeddings=False))
    approved = approve_version(engine, lead, version.id, attest=True,
                               override_reason=f"checked {BEACON} {IMG} {LINK} {BOLD}")
    assert approved.override_reason  # an override, shown on the Versions, Train and Runs pages
    create_candidate(engine, lead, project.id, BuildOptions(use_embeddings=False))  # a candidate next to it
    return project.id


def _markdown_strings(at: AppTest) -> list[str]:
    out: list[str] = []
    for kind in ("markdown", "caption", "title", "header", "subheader", "error", "warning", "info", "success",
                 "toast", "latex"):
        out += [str(e.value) for e in at.get(kind)]
    for element in at.get("exception"):
        out.append(str(element.message))
    for kind in ("button", "selectbox", "multiselect", "text_input", "text_area", "number_input", "radio",
                 "checkbox", "toggle", "expander", "metric", "tab", "slider", "select_slider", "date_input",
                 "color_picker", "download_button", "form_submit_button"):
        for element in at.get(kind):
            out.append(str(getattr(element, "label", "")))
            help_text = getattr(element, "help", None)
            if help_text:
                out.append(str(help_text))
    return out


def _chart_specs(at: AppTest) -> list[str]:
    return [element.proto.spec if hasattr(element.proto, "spec") else str(element.proto)
            for element in at.get("plotly_chart")]


def _markup_from_data(at: AppTest) -> list[tuple[str, str]]:
    found = []
    for text in _markdown_strings(at):
        html = _MARKDOWN.render(text)
        found += [(fragment, text) for fragment in _FOUND if fragment in html]
    for spec in _chart_specs(at):
        found += [(fragment, spec[:200]) for fragment in ("<img", "<a ", "<b>b</b>") if fragment in spec]
    return found


_SHOWN: list[str] = []  # what the markdown elements showed, as text: the data must be there, literally


def _visit(at: AppTest, project_id: int, page: str) -> list[tuple[str, str]]:
    at.session_state[PROJECT_KEY] = project_id
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, (page, [e.message for e in at.exception])
    _SHOWN.extend(_MARKDOWN.render(text) for text in _markdown_strings(at))
    return _markup_from_data(at)


def test_no_page_renders_markup_from_the_data(hostile: int) -> None:
    problems: dict[str, list[tuple[str, str]]] = {}
    at = logged_in("lena", "lead-password")
    for page in LEAD_PAGES:
        found = _visit(at, hostile, page)
        if found:
            problems[page] = found
    at = logged_in("root", "root-password")
    for page in ADMIN_PAGES:
        found = _visit(at, hostile, page)
        if found:
            problems[page] = found
    assert problems == {}
    # Not vacuous: the hostile strings did reach markdown elements, and showed as their characters.
    shown = " ".join(_SHOWN)
    assert "![x](http://host/beacon.png)" in shown and "**b**" in shown and "[a](http://x)" in shown
    assert "&lt;img src=x&gt;" in shown
