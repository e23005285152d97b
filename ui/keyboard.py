"""Keyboard shortcuts of the review screens, on Streamlit's own button shortcuts (`st.button(shortcut=...)`).

Streamlit shows the key on the button and ignores key presses while a text field, text area or
select box has the focus, so typing a comment never labels an item. Digits pick labels (1-9, then 0
for the tenth) or the 1-5 rating; letters move around. C and R are Streamlit's own (clear cache,
rerun) and are not used.
"""

from __future__ import annotations

import re

SKIP = "S"
BACK = "B"
NEXT = "N"
LABEL_KEYS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "0")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$:])")


def label_key(index: int) -> str | None:
    """The shortcut of the index-th label (0-based): 1-9, 0 for the tenth, none after."""
    return LABEL_KEYS[index] if index < len(LABEL_KEYS) else None


def escape_markdown(text: str) -> str:
    """Text that Streamlit's markdown (used for widget labels) shows literally: labels can come from
    an imported file."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)
