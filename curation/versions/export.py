"""Exporting an approved version (folder or hub push) with its audit event."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import Session  # noqa: E402

from curation.access import audit  # noqa: E402
from curation.access.roles import LEADS, require_role  # noqa: E402
from curation.data.export import EXPORT_FORMATS  # noqa: E402
from curation.errors import InputError  # noqa: E402
from curation.models import DatasetVersion, User  # noqa: E402
from curation.retry import run_write  # noqa: E402
from curation.settings import get_settings  # noqa: E402
from curation.versions.records import verified_dataset_dict, version_provenance  # noqa: E402

# Every project export format but CSV (one flat file loses the split folders a version keeps), the
# dataset folder first.
VERSION_EXPORT_FORMATS: tuple[str, ...] = ("hf", *(f for f in EXPORT_FORMATS if f not in ("hf", "csv")))


# --------------------------------------------------------------------------- export
def export_version(engine: Engine, actor: User, version_id: int, out: str | Path,
                   formats: Sequence[str] = VERSION_EXPORT_FORMATS) -> list[Path]:
    """Write an approved version to the folder `out`: `hf/` (DatasetDict, save_to_disk), `jsonl/` and
    `parquet/` (one file per split), and README.md (the dataset card). The stored items are verified
    first. Returns the paths written. Nothing is left behind when writing fails."""
    from curation.versions.card import dataset_card

    require_role(actor, *LEADS)
    unknown = [f for f in formats if f not in VERSION_EXPORT_FORMATS]
    if unknown or not formats:
        raise InputError(f"export formats are {', '.join(VERSION_EXPORT_FORMATS)}; got {', '.join(unknown) or 'none'}")
    version, dataset_dict = verified_dataset_dict(engine, version_id, "Refusing to export")
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    try:
        if "hf" in formats:
            dataset_dict.save_to_disk(str(partial / "hf"))
        for name, part in dataset_dict.items():
            if "jsonl" in formats:
                (partial / "jsonl").mkdir(exist_ok=True)
                with (partial / "jsonl" / f"{name}.jsonl").open("w", encoding="utf-8") as handle:
                    for row in part:
                        handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            if "parquet" in formats:
                (partial / "parquet").mkdir(exist_ok=True)
                part.to_parquet(str(partial / "parquet" / f"{name}.parquet"))
        (partial / "README.md").write_text(dataset_card(version_provenance(engine, version_id)), encoding="utf-8")
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        partial.rename(out)
    finally:
        if partial.exists():
            shutil.rmtree(partial)
    _audit_export(engine, actor, version, str(out))
    return sorted(p for p in out.rglob("*") if p.is_file())


def _audit_export(engine: Engine, actor: User, version: DatasetVersion, target: str) -> None:
    def work(session: Session) -> None:
        audit.record(session, actor, "version.export", "dataset_version", version.id, project_id=version.project_id,
                     after={"number": version.number, "content_hash": version.content_hash, "to": target})

    run_write(engine, work)


def push_version_to_hub(engine: Engine, actor: User, version_id: int, repo_id: str, *, token: str | None = None,
                        private: bool = True) -> str:
    """Push an approved version (DatasetDict and dataset card) to the Hugging Face Hub. Needs HF_TOKEN
    (or `token`). Returns the repository URL. Not exercised by the tests (no network there)."""
    from curation.versions.card import dataset_card

    require_role(actor, *LEADS)
    token = token or get_settings().hf_token
    if not token:
        raise InputError("set HF_TOKEN to push to the Hugging Face Hub", field="hf_token")
    if not repo_id.strip():
        raise InputError("name the Hub repository (owner/name)", field="repo_id")
    version, dataset_dict = verified_dataset_dict(engine, version_id, "Refusing to push")
    import datasets
    from huggingface_hub import HfApi

    offline = datasets.config.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = False  # offline mode guards local reads; a push is meant to go out
    try:
        dataset_dict.push_to_hub(repo_id, token=token, private=private)
        HfApi(token=token).upload_file(path_or_fileobj=dataset_card(version_provenance(engine, version_id)).encode(),
                                       path_in_repo="README.md", repo_id=repo_id, repo_type="dataset")
    finally:
        datasets.config.HF_HUB_OFFLINE = offline
    _audit_export(engine, actor, version, f"hub:{repo_id}")
    return f"https://huggingface.co/datasets/{repo_id}"
