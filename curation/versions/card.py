"""The dataset card (README.md with YAML metadata) of an exported dataset version.

Built from `curation.versions.version_provenance`: licences, sources, size, label distribution,
agreement, the version's SHA-256 and who approved it (with the override reason, when there is one).
"""

from __future__ import annotations

from typing import Any

import yaml


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "n>1M"


def card_metadata(p: dict[str, Any]) -> dict[str, Any]:
    """The YAML header's fields."""
    licences = [name for name in p.get("licences", {}) if name != "(none)"]
    agreement = p.get("agreement") or {}
    splits = p.get("splits") or {}
    generation = p.get("task_type") == "generation"
    return {
        "license": [name.lower() for name in licences] or "unknown",
        "licenses": dict(p.get("licences", {})),
        "sources": dict(p.get("sources", {})),
        "size_categories": [_size_category(int(p.get("item_count") or 0))],
        "task_categories": ["text-generation" if generation else "text-classification"],
        "pretty_name": f"{p.get('project')} v{p.get('number')}",
        "dataset_info": {"splits": [{"name": name, "num_examples": int(count)} for name, count in splits.items()]},
        "configs": [{"config_name": "default",
                     "data_files": [{"split": name, "path": f"parquet/{name}.parquet"} for name in splits]}],
        "curation": {
            "project": p.get("project"),
            "version": p.get("number"),
            "status": p.get("status"),
            "size": int(p.get("item_count") or 0),
            "content_sha256": p.get("content_hash"),
            "approved_by": p.get("approved_by"),
            "approved_at": p.get("approved_at"),
            "approval_note": p.get("approval_note") or "",
            "override_reason": p.get("override_reason"),
            "overridden_checks": list(p.get("overridden_checks") or []),
            "label_distribution": dict(p.get("label_distribution") or {}),
            "agreement": {key: agreement.get(key) for key in ("alpha", "low", "high", "level", "n_scored", "threshold")
                          if key in agreement},
            "split_seed": p.get("split_seed"),
        },
    }


def dataset_card(p: dict[str, Any]) -> str:
    """README.md text: YAML front matter, then a readable summary."""
    meta = card_metadata(p)
    header = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    agreement = p.get("agreement") or {}
    alpha = agreement.get("alpha")
    interval = (f" (95% interval {agreement['low']:.3f} to {agreement['high']:.3f})"
                if agreement.get("low") is not None and agreement.get("high") is not None else "")
    lines = [
        "---", header.rstrip(), "---", "",
        f"# {p.get('project')} — dataset version {p.get('number')}", "",
        f"- **SHA-256 of the items:** `{p.get('content_hash')}`",
        f"- **Items:** {p.get('item_count')} ("
        + ", ".join(f"{name}: {count}" for name, count in (p.get("splits") or {}).items()) + ")",
        f"- **Task:** {p.get('task_type')}",
        f"- **Approved by:** {p.get('approved_by') or '—'} at {p.get('approved_at') or '—'}",
    ]
    if p.get("approval_note"):
        lines.append(f"- **Approval note:** {p['approval_note']}")
    if p.get("override_reason"):
        lines.append(f"- **⚠ Approved with an override** of {p.get('overridden_summary') or ', '.join(p.get('overridden_checks') or [])}: "
                     f"{p['override_reason']}")
    lines.append(f"- **Agreement:** Krippendorff's alpha {alpha:.3f}{interval}" if alpha is not None
                 else f"- **Agreement:** undefined ({agreement.get('reason') or 'no items with two labels'})")
    lines += ["", "## Licences", ""] + [f"- {name}: {count} items" for name, count in (p.get("licences") or {}).items()]
    lines += ["", "## Sources", ""] + [f"- {name}: {count} items" for name, count in (p.get("sources") or {}).items()]
    if p.get("label_distribution"):
        lines += ["", "## Label distribution", ""] + [f"- {label}: {count}"
                                                     for label, count in p["label_distribution"].items()]
    lines += ["", "## Verify", "", "`python -m curation version verify "
              f"{p.get('version_id')}` recomputes the SHA-256 from the stored items.", ""]
    return "\n".join(lines)


def read_card_metadata(text: str) -> dict[str, Any]:
    """The YAML front matter of a card written by `dataset_card`."""
    _, header, _ = text.split("---\n", 2)
    return yaml.safe_load(header) or {}
