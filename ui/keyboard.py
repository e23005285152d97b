"""Keyboard shortcuts of the review screens, on Streamlit's own button shortcuts (`st.button(shortcut=...)`).

Streamlit shows the key on the button and ignores key presses while a text field, text area or
select box has the focus, so typing a comment never labels an item. Digits pick labels (1-9, then 0
for the tenth) or the 1-5 rating; letters move around. C and R are Streamlit's own (clear cache,
rerun) and are not used.

Streamlit also ignores them while a checkbox has the focus, which is where Tab lands after the
comment field (the flags). `enable_shortcuts_on_checkboxes` adds a fixed script (no page data in
it) that presses the button showing that shortcut in that one case.
"""

from __future__ import annotations

import streamlit as st

SKIP = "S"
BACK = "B"
NEXT = "N"
LABEL_KEYS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "0")


def label_key(index: int) -> str | None:
    """The shortcut of the index-th label (0-based): 1-9, 0 for the tenth, none after."""
    return LABEL_KEYS[index] if index < len(LABEL_KEYS) else None



_CHECKBOX_SCRIPT = """
<script>
(function () {
  if (window.__curationCheckboxShortcuts) { return; }
  window.__curationCheckboxShortcuts = true;
  // The button showing this shortcut, once the page is not in the middle of a rerun (a checkbox
  // change starts one: its buttons are stale until it ends), for up to five seconds.
  const press = function (wanted, triesLeft) {
    const app = document.querySelector('[data-testid="stApp"]');
    const main = document.querySelector('[data-testid="stMain"]');
    const busy = !app || app.getAttribute("data-test-script-state") === "running"
      || (main && main.querySelector('[data-stale="true"]'));
    if (!busy) {
      for (const hint of main.querySelectorAll('button kbd[aria-label^="Shortcut"]')) {
        const button = hint.closest("button");
        if (button && !button.disabled && hint.textContent.trim().toLowerCase() === wanted) {
          button.click();
          return;
        }
      }
      return;
    }
    if (triesLeft > 0) { setTimeout(function () { press(wanted, triesLeft - 1); }, 100); }
  };
  document.addEventListener("keydown", function (event) {
    const target = event.target;
    if (!target || target.tagName !== "INPUT" || ["checkbox", "radio"].indexOf(target.type) < 0) { return; }
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) { return; }
    if (!event.key || event.key.length !== 1) { return; }
    if (!/^[a-z0-9]$/i.test(event.key)) { return; }
    event.preventDefault();
    setTimeout(function () { press(event.key.toLowerCase(), 50); }, 50);
  }, true);
})();
</script>
"""


def enable_shortcuts_on_checkboxes() -> None:
    """Let the buttons' shortcuts work while a checkbox has the focus (once per browser tab)."""
    st.html(_CHECKBOX_SCRIPT, unsafe_allow_javascript=True)
