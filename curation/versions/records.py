"""Reading versions: look-up, items, verification of the hash, records, provenance."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from sqlalchemy import case, select  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import Session  # noqa: E402

from curation.access.roles import LEADS, require_role  # noqa: E402
from curation.db import read_session  # noqa: E402
from curation.errors import Conflict  # noqa: E402
from curation.lookup import get_or_not_found, read_or_not_found  # noqa: E402
from curation.models import (  # noqa: E402
    DatasetVersion,
    DatasetVersionItem,
    Project,
    TaskType,
    User,
    VersionStatus,
)
from curation.versions.checklist import overridden_summary  # noqa: E402
from curation.versions.hashing import item_hash, version_hash  # noqa: E402

if TYPE_CHECKING:
    import datasets

SPLITS = ("train", "eval")


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    stored_hash: str
    actual_hash: str
    message: str
    mismatched_items: tuple[str, ...] = ()


# --------------------------------------------------------------------------- reading (training uses these)
def get_version(engine: Engine, version_id: int) -> DatasetVersion:
    return read_or_not_found(engine, DatasetVersion, version_id)


def read_version(engine: Engine, actor: User, version_id: int) -> DatasetVersion:
    """One version (leads and admins): `get_version` for pages and commands acting for a user."""
    require_role(actor, *LEADS)
    return get_version(engine, version_id)


def _stored_items(engine: Engine, version_id: int, limit: int | None = None) -> list[DatasetVersionItem]:
    """The version's items, train first, then eval, each by external id (no role check: callers check);
    with `limit`, the first `limit` of them, chosen by the database (a preview of a 100k-item version
    reads 500 rows)."""
    get_version(engine, version_id)
    query = select(DatasetVersionItem).where(DatasetVersionItem.version_id == version_id)
    if limit is not None:
        split_rank = case({name: i for i, name in enumerate(SPLITS)}, value=DatasetVersionItem.split, else_=9)
        query = query.order_by(split_rank, DatasetVersionItem.external_id).limit(limit)
    with read_session(engine) as session:
        items = list(session.execute(query).scalars())
    return sorted(items, key=lambda i: (SPLITS.index(i.split) if i.split in SPLITS else 9, i.external_id))


def version_items(engine: Engine, actor: User, version_id: int, limit: int | None = None
                  ) -> list[DatasetVersionItem]:
    """The version's items, train first, then eval, each by external id (leads and admins); `limit` as
    in `_stored_items`."""
    require_role(actor, *LEADS)
    return _stored_items(engine, version_id, limit)


def list_versions(engine: Engine, actor: User, project_id: int) -> list[DatasetVersion]:
    """A project's versions, newest first (leads and admins)."""
    require_role(actor, *LEADS)
    with read_session(engine) as session:
        return list(session.execute(select(DatasetVersion).where(DatasetVersion.project_id == project_id)
                                    .order_by(DatasetVersion.number.desc())).scalars())


def usernames(engine: Engine, ids: Sequence[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    with read_session(engine) as session:
        return dict(session.execute(select(User.id, User.username).where(User.id.in_(wanted))).all())


def verify_version(engine: Engine, actor: User, version_id: int) -> VerifyResult:
    """Recompute the version's SHA-256 from its stored items and compare it with the stored one
    (leads and admins)."""
    require_role(actor, *LEADS)
    return _check(get_version(engine, version_id), _stored_items(engine, version_id))


def _check(version: DatasetVersion, items: Sequence[DatasetVersionItem]) -> VerifyResult:
    """`items` (as read, in any order) against the version's stored SHA-256, per-item hashes and count."""
    actual = version_hash(items)
    bad = tuple(item.external_id for item in items if item_hash(item) != item.content_hash)
    count_ok = len(items) == version.item_count
    if actual == version.content_hash and not bad and count_ok:
        return VerifyResult(True, version.content_hash, actual,
                            f"version {version.number} (id {version.id}): {len(items)} items, SHA-256 {actual} matches")
    problems = []
    if actual != version.content_hash:
        problems.append(f"stored SHA-256 {version.content_hash} but the items hash to {actual}")
    if bad:
        problems.append(f"{len(bad)} items differ from their own hash: {', '.join(bad[:5])}")
    if not count_ok:
        problems.append(f"{version.item_count} items recorded but {len(items)} stored")
    return VerifyResult(False, version.content_hash, actual,
                        f"version {version.number} (id {version.id}) was changed after it was built: "
                        + "; ".join(problems), bad)


def _features(task_type: str) -> datasets.Features:
    import datasets  # 1.7 s of CPU, paid only by what builds a DatasetDict (not the CLI's start)

    string = datasets.Value("string")
    if task_type == TaskType.generation.value:
        return datasets.Features({"id": string, "messages": datasets.List({"role": string, "content": string}),
                                  "source": string, "licence": string})
    return datasets.Features({"id": string, "text": string, "label": string, "source": string, "licence": string})


def _row(item: DatasetVersionItem, task_type: str) -> dict[str, Any]:
    if task_type == TaskType.generation.value:
        return {"id": item.external_id, "messages": [{"role": m["role"], "content": m["content"]}
                                                     for m in (item.messages or [])],
                "source": item.source, "licence": item.licence}
    return {"id": item.external_id, "text": item.text, "label": item.label, "source": item.source,
            "licence": item.licence}


def _records(version: DatasetVersion, items: Sequence[DatasetVersionItem]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in SPLITS}
    for item in items:
        out.setdefault(item.split, []).append(_row(item, str(version.task_type)))
    return out


def version_records(engine: Engine, version_id: int) -> dict[str, list[dict[str, Any]]]:
    """The version's rows per split, in the DatasetDict's columns."""
    return _records(get_version(engine, version_id), _stored_items(engine, version_id))


def _dataset_dict(version: DatasetVersion, items: Sequence[DatasetVersionItem]) -> datasets.DatasetDict:
    import datasets

    features = _features(str(version.task_type))
    parts = {}
    for name, rows in _records(version, items).items():
        parts[name] = (datasets.Dataset.from_list(rows, features=features) if rows else
                       datasets.Dataset.from_dict({column: [] for column in features}, features=features))
    return datasets.DatasetDict(parts)


def version_dataset_dict(engine: Engine, version_id: int) -> datasets.DatasetDict:
    """'train' and 'eval' splits. Classification: id, text, label, source, licence. Generation: id,
    messages (chat, TRL SFTTrainer format), source, licence. Not verified: what trains or leaves the
    workbench goes through `verified_dataset_dict`."""
    return _dataset_dict(get_version(engine, version_id), _stored_items(engine, version_id))


def require_intact(engine: Engine, version_id: int, refusing: str) -> tuple[DatasetVersion,
                                                                             list[DatasetVersionItem]]:
    """The approved version and its stored items, after checking exactly those items against the
    version's SHA-256. Raises Conflict "`refusing`: <verify message>" when they differ, or when the
    version is not approved.

    No role check here: the callers (training start and worker, export, Hub push) check the actor."""
    version = get_version(engine, version_id)
    if version.status != VersionStatus.approved:
        raise Conflict(f"{refusing}: version {version.number} is {version.status}; only approved versions "
                       "train or leave the workbench.")
    items = _stored_items(engine, version_id)
    check = _check(version, items)
    if not check.ok:
        raise Conflict(f"{refusing}: {check.message}")
    return version, items


def verified_dataset_dict(engine: Engine, version_id: int, refusing: str) -> tuple[DatasetVersion,
                                                                                    datasets.DatasetDict]:
    """`require_intact`, then the DatasetDict built from the very rows just checked (one read, so a row
    changed between a check and a second read cannot slip through)."""
    version, items = require_intact(engine, version_id, refusing)
    return version, _dataset_dict(version, items)


def version_provenance(engine: Engine, version_id: int) -> dict[str, Any]:
    """Where a version comes from and who approved it (for model and dataset cards)."""
    version = get_version(engine, version_id)
    with read_session(engine) as session:
        project = session.get(Project, version.project_id)
    names = usernames(engine, [version.created_by_id, version.approved_by_id])
    stats = version.stats or {}
    return {
        "version_id": version.id,
        "number": version.number,
        "status": str(version.status),
        "project": project.name if project else None,
        "project_id": version.project_id,
        "task_type": str(version.task_type),
        "labels": list(version.labels),
        "content_hash": version.content_hash,
        "item_count": version.item_count,
        "splits": stats.get("splits", {}),
        "created_by": names.get(version.created_by_id) if version.created_by_id else None,
        "created_at": version.created_at.isoformat() if version.created_at else None,
        "approved_by": names.get(version.approved_by_id) if version.approved_by_id else None,
        "approved_at": version.approved_at.isoformat() if version.approved_at else None,
        "approval_note": version.approval_note,
        "override_reason": version.override_reason,
        "overridden_checks": list((version.checklist or {}).get("overridden", [])),
        "overridden_summary": overridden_summary(version.checklist or {}),
        "sources": stats.get("sources", {}),
        "licences": stats.get("licences", {}),
        "counts_per_source": stats.get("sources", {}),
        "counts_per_licence": stats.get("licences", {}),
        "approver": names.get(version.approved_by_id) if version.approved_by_id else None,
        # Agreement on the project's annotations when the version was approved (when built, for a candidate).
        "agreement": (version.checklist or {}).get("agreement_at_approval") or stats.get("agreement", {}),
        "agreement_at_build": stats.get("agreement", {}),
        "label_distribution": stats.get("labels", {}),
        "split_seed": version.split_seed,
    }


def _locked(session: Session, version_id: int) -> DatasetVersion:
    return get_or_not_found(session, DatasetVersion, version_id, lock=True)


def version_label(version: DatasetVersion) -> str:
    """One line naming a version, its status and (when set) its override, for lists and pickers."""
    text = f"v{version.number} · {version.status} · {version.item_count} items · {version.content_hash[:12]}"
    if version.override_reason:
        text += " · OVERRIDDEN"
    return text
