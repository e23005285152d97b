"""One set of status icons for pages and the CLI, keyed by status value: an example's review status, a
checklist item's outcome and a training run's state (the three vocabularies share no value)."""

from __future__ import annotations

STATUS_ICONS: dict[str, str] = {
    # examples (curation.models.ExampleStatus)
    "new": "⚪", "in_review": "🟡", "disputed": "🔴", "labelled": "🟢", "excluded": "⚫",
    # checklist items (curation.versions.checklist: PASS, WARN, FAIL, NA)
    "pass": "✅", "warn": "⚠️", "fail": "❌", "n/a": "➖",
    # training runs (curation.models.RunStatus)
    "queued": "⏳", "running": "🏃", "cancelling": "🛑", "succeeded": "✅", "failed": "❌", "cancelled": "🚫",
}
