"""What changed between two versions."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy.engine import Engine  # noqa: E402

from curation.access.roles import LEADS, require_role  # noqa: E402
from curation.models import DatasetVersion, User
from curation.versions.checklist import items_of
from curation.versions.records import _stored_items, get_version


@dataclass
class VersionDiff:
    a: int  # version ids
    b: int
    a_number: int
    b_number: int
    added: list[str] = field(default_factory=list)  # external ids in b only
    removed: list[str] = field(default_factory=list)  # in a only
    relabelled: list[dict[str, Any]] = field(default_factory=list)  # {"id", "from", "to"}
    content_changed: list[str] = field(default_factory=list)  # same id, different text/response/messages
    moved: list[dict[str, Any]] = field(default_factory=list)  # {"id", "from", "to"} split changes
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> {"a", "b", "change"}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- diff
def _flat(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flat(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        out[prefix] = value


def _comparable(version: DatasetVersion) -> dict[str, Any]:
    stats = version.stats or {}
    out: dict[str, Any] = {}
    for key in ("items", "splits", "labels", "sources", "licences", "left_out"):
        _flat(key, stats.get(key), out)
    agreement = stats.get("agreement") or {}
    out["agreement.alpha"] = agreement.get("alpha")
    for item in items_of(version.checklist or {}):
        out[f"checklist.{item.key}"] = item.status
    return out


def diff_versions(engine: Engine, actor: User, a_id: int, b_id: int) -> VersionDiff:
    """What changed from version `a` to version `b`: items added, removed, relabelled (or with a new
    response), moved between splits, and the statistics that changed (leads and admins)."""
    require_role(actor, *LEADS)
    a, b = get_version(engine, a_id), get_version(engine, b_id)
    old = {item.external_id: item for item in _stored_items(engine, a_id)}
    new = {item.external_id: item for item in _stored_items(engine, b_id)}
    diff = VersionDiff(a_id, b_id, a.number, b.number, added=sorted(set(new) - set(old)),
                       removed=sorted(set(old) - set(new)))
    for key in sorted(set(old) & set(new)):
        x, y = old[key], new[key]
        if x.label != y.label:
            diff.relabelled.append({"id": key, "from": x.label, "to": y.label})
        if (x.text, x.prompt, x.response, x.messages) != (y.text, y.prompt, y.response, y.messages):
            diff.content_changed.append(key)
        if x.split != y.split:
            diff.moved.append({"id": key, "from": x.split, "to": y.split})
    before, after = _comparable(a), _comparable(b)
    for key in sorted(set(before) | set(after)):
        x, y = before.get(key), after.get(key)
        if x != y:
            change = y - x if isinstance(x, (int, float)) and isinstance(y, (int, float)) \
                and not isinstance(x, bool) else None
            diff.stats[key] = {"a": x, "b": y, "change": change}
    return diff
