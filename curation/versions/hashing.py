"""Canonical records and SHA-256 hashes of items and versions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from curation.models import DatasetVersionItem


# --------------------------------------------------------------------------- canonical form and hashes
def canonical_record(item: DatasetVersionItem | dict[str, Any]) -> dict[str, Any]:
    """The fields the version hash covers, as plain JSON values."""
    get = item.get if isinstance(item, dict) else lambda name: getattr(item, name)
    return {"id": get("external_id"), "split": get("split"), "text": get("text"), "prompt": get("prompt"),
            "response": get("response"), "messages": get("messages"), "label": get("label"),
            "source": get("source"), "licence": get("licence")}


def _canonical_json(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def item_hash(item: DatasetVersionItem | dict[str, Any]) -> str:
    return hashlib.sha256(_canonical_json(canonical_record(item)).encode("utf-8")).hexdigest()


def version_hash(items: Sequence[DatasetVersionItem | dict[str, Any]]) -> str:
    """SHA-256 hex over the items' canonical JSON lines, ordered by (split, id)."""
    records = sorted((canonical_record(item) for item in items), key=lambda r: (r["split"], r["id"]))
    digest = hashlib.sha256()
    for record in records:
        digest.update(_canonical_json(record).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()
