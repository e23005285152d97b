"""Word-level differences between an original response and an edited one, for the review and
adjudication pages: one changed word shows as that word, not as the whole paragraph removed and
added again (a line diff of a one-paragraph reply).

The result is plain text in git's `--word-diff=plain` notation, `[-removed-]` and `{+added+}`, so a
page shows it literally (st.code, wrapped) and nothing from the data is read as markup.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

# Words, runs of whitespace and single punctuation marks: joined back, they give the text unchanged.
_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")


@dataclass(frozen=True)
class DiffPart:
    op: Literal["equal", "delete", "insert"]
    text: str


def tokens(text: str) -> list[str]:
    """`text` split into words, whitespace runs and punctuation marks; "".join(tokens(t)) == t."""
    return _TOKEN.findall(text)


def word_diff(original: str, edited: str) -> list[DiffPart]:
    """The parts of `original` kept, deleted and inserted to get `edited`, in order; a replaced run is
    its deletion followed by its insertion. A lone space between two changes joins them ("[-reply 1-]"
    rather than "[-reply-] [-1-]"). Kept + deleted parts give `original`, kept + inserted give `edited`.
    Empty when both are empty."""
    a, b = tokens(original), tokens(edited)
    opcodes = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    parts: list[DiffPart] = []
    deleted = inserted = ""

    def flush() -> None:
        nonlocal deleted, inserted
        if deleted:
            parts.append(DiffPart("delete", deleted))
        if inserted:
            parts.append(DiffPart("insert", inserted))
        deleted = inserted = ""

    for index, (op, i1, i2, j1, j2) in enumerate(opcodes):
        if op == "equal":
            kept = "".join(a[i1:i2])
            between_changes = (deleted or inserted) and index + 1 < len(opcodes)
            if between_changes and kept.isspace():
                deleted, inserted = deleted + kept, inserted + kept
                continue
            flush()
            parts.append(DiffPart("equal", kept))
            continue
        deleted += "".join(a[i1:i2])
        inserted += "".join(b[j1:j2])
    flush()
    return parts


def word_diff_text(original: str, edited: str) -> str:
    """The edit in `[-removed-]{+added+}` notation (kept text as is); "" when nothing changed."""
    parts = word_diff(original, edited)
    if all(part.op == "equal" for part in parts):
        return ""
    marks = {"equal": "{}", "delete": "[-{}-]", "insert": "{{+{}+}}"}
    return "".join(marks[part.op].format(part.text) for part in parts)
