"""Widgets shared by several pages. Dataset text is shown with st.text/st.code or in data frames,
never through markdown or HTML, so markup in an example shows as the literal characters."""

from __future__ import annotations

import json
import re
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy.engine import Engine

from curation.access.audit import example_history
from curation.models import Example, User
from curation.review.textdiff import word_diff_text

_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$:=\"'&%^@,;?/])")


def show_example(example: Example) -> None:
    """The example's content: text, prompt + response, or a chat as a conversation."""
    if example.messages:
        for message in example.messages:
            with st.chat_message(message["role"] if message["role"] in ("user", "assistant") else "ai"):
                st.text(message["content"])
    elif example.prompt is not None:
        st.caption("Prompt")
        st.text(example.prompt)
        st.caption("Response")
        st.text(example.response or "")
    else:
        st.text(example.text or "")


def show_json(value: Any) -> None:
    st.code(json.dumps(value, indent=2, ensure_ascii=False, default=str), language="json")


def show_word_diff(original: str, edited: str, unchanged: str = "(unchanged)") -> bool:
    """The edit from `original` to `edited` word by word, `[-removed-]{+added+}`, as literal wrapped
    text (st.code: nothing from the data is read as markup). Returns whether anything changed."""

    text = word_diff_text(original, edited)
    st.code(text or unchanged, language=None, wrap_lines=True)
    return bool(text)


def preview_text(example: Example, limit: int = 160) -> str:
    if example.messages:
        body = " | ".join(f"{m['role']}: {m['content']}" for m in example.messages)
    elif example.prompt is not None:
        body = f"{example.prompt} → {example.response or ''}"
    else:
        body = example.text or ""
    body = " ".join(body.split())
    return body if len(body) <= limit else body[: limit - 1] + "…"


def escape_markdown(text: str) -> str:
    """`text` for an element that renders markdown (captions, alerts, widget labels), with every
    punctuation character escaped: ids, labels, file names and error messages quoting the data
    then show as the literal characters."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)


def show_error(error: Exception) -> None:
    """A core error as an alert, its message shown literally (it may quote the data)."""
    st.error(escape_markdown(str(error)))


def show_history(engine: Engine, user: User, example_id: int) -> None:
    """The example's audit trail (who did what, before and after) in an expander; the role is checked
    by the core (`curation.access.audit.example_history`)."""
    with st.expander("History"):
        history = example_history(engine, user, example_id)
        if history:
            st.dataframe(pd.DataFrame([{"at": row.event.at, "by": row.actor or "system",
                                        "action": row.event.action,
                                        "before": json.dumps(row.event.before, ensure_ascii=False, default=str),
                                        "after": json.dumps(row.event.after, ensure_ascii=False, default=str)}
                                       for row in history]), hide_index=True, width="stretch")
        else:
            st.caption("Nothing recorded yet (imported labels arrive with their import).")
