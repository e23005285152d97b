"""Exporting a project's examples as JSONL, CSV, Parquet or a DatasetDict folder."""

from __future__ import annotations

import json
import os
import shutil
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # local files only; never reach for a hub here

from sqlalchemy.engine import Engine  # noqa: E402

from curation.access.roles import LEADS, require_role  # noqa: E402
from curation.data.browse import ExampleFilter, filtered_query  # noqa: E402
from curation.data.formats import hf_datasets  # noqa: E402
from curation.data.projects import get_project_by_id  # noqa: E402
from curation.db import read_session  # noqa: E402
from curation.errors import InputError  # noqa: E402
from curation.lookup import get_or_not_found  # noqa: E402
from curation.models import Example, ExampleStatus, Project, TaskType, User  # noqa: E402

if TYPE_CHECKING:
    import datasets

EXPORT_FORMATS = ("jsonl", "csv", "parquet", "hf")


# --------------------------------------------------------------------------- exporting
def export_rows(engine: Engine, actor: User, project_id: int, selection: ExampleFilter | None = None,
                include_excluded: bool = False) -> Iterator[dict[str, Any]]:
    """Export records of a project (or a filtered selection), in id order.

    Classification: id, text, label, split, source, licence, metadata (JSON text), status.
    Generation: id, messages (user prompt + assistant response: the final response when a lead
    set one), split, source, licence, metadata. `messages` is what TRL's SFTTrainer takes as is."""
    require_role(actor, *LEADS)
    with read_session(engine) as session:
        project = get_or_not_found(session, Project, project_id)
        task_type = TaskType(project.task_type)
        query = filtered_query(project_id, selection or ExampleFilter())
        if not include_excluded:
            query = query.where(Example.status != ExampleStatus.excluded.value)
        last_id = 0
        while True:
            batch = session.execute(query.where(Example.id > last_id).order_by(Example.id).limit(2000)).scalars().all()
            if not batch:
                return
            for example in batch:
                yield _export_record(example, task_type)
            last_id = batch[-1].id


def _export_record(example: Example, task_type: TaskType) -> dict[str, Any]:
    common = {"split": example.split, "source": example.source, "licence": example.licence,
              "metadata": json.dumps(example.meta, ensure_ascii=False, sort_keys=True)}
    if task_type is TaskType.generation:
        if example.messages:
            messages = [dict(m) for m in example.messages]
            if example.final_response is not None and messages and messages[-1]["role"] == "assistant":
                messages[-1]["content"] = example.final_response
        else:
            response = example.final_response if example.final_response is not None else example.response
            messages = [{"role": "user", "content": example.prompt or ""},
                        {"role": "assistant", "content": response or ""}]
        return {"id": example.external_id, "messages": messages, **common}
    return {"id": example.external_id, "text": example.text, "label": example.final_label,
            "status": ExampleStatus(example.status).value, **common}


def export_project(engine: Engine, actor: User, project_id: int, out: str | Path, file_format: str,
                   selection: ExampleFilter | None = None, include_excluded: bool = False) -> int:
    """Write the export to `out` (a file, or a folder for `hf`). Returns the number of records.

    `hf` writes a DatasetDict with one split per distinct `split` value (`train` when none is set)
    through `save_to_disk`. Nothing is left behind when writing fails."""
    if file_format not in EXPORT_FORMATS:
        raise InputError(f"unknown export format '{file_format}'; use one of {', '.join(EXPORT_FORMATS)}")
    require_role(actor, *LEADS)  # before anything is written (export_rows checks again when it starts)
    features = _export_features(TaskType(get_project_by_id(engine, project_id).task_type))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = export_rows(engine, actor, project_id, selection, include_excluded)
    partial = out.with_name(out.name + ".partial")
    try:
        if file_format == "jsonl":
            count = 0
            with partial.open("w", encoding="utf-8") as handle:
                for row in rows:
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                    count += 1
        else:
            records = list(rows)
            count = len(records)
            if file_format == "hf":
                by_split: dict[str, list[dict[str, Any]]] = defaultdict(list)
                for record in records:
                    by_split[record["split"] or "train"].append(record)
                dataset_dict = hf_datasets().DatasetDict({name: _dataset(part, features)
                                                     for name, part in sorted(by_split.items())})
                dataset_dict.save_to_disk(str(partial))
            else:
                dataset = _dataset(records, features)
                if file_format == "csv":
                    if "messages" in dataset.column_names:
                        dataset = dataset.map(lambda r: {"messages": json.dumps(r["messages"], ensure_ascii=False)})
                    dataset.to_csv(str(partial), index=False)
                else:
                    dataset.to_parquet(str(partial))
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        partial.rename(out)
    finally:
        if partial.exists():
            shutil.rmtree(partial) if partial.is_dir() else partial.unlink()
    return count


def _export_features(task_type: TaskType) -> datasets.Features:
    """The export schema, fixed per task type: a column that happens to be empty keeps its type, and
    every split of an `hf` export has the same features."""
    datasets = hf_datasets()
    string = datasets.Value("string")
    common = {"split": string, "source": string, "licence": string, "metadata": string}
    if task_type is TaskType.generation:
        return datasets.Features({"id": string, "messages": datasets.List({"role": string, "content": string}),
                                  **common})
    return datasets.Features({"id": string, "text": string, "label": string, "status": string, **common})


def _dataset(records: list[dict[str, Any]], features: datasets.Features) -> datasets.Dataset:
    datasets = hf_datasets()
    if not records:  # from_list cannot take features without rows
        return datasets.Dataset.from_dict({name: [] for name in features}, features=features)
    return datasets.Dataset.from_list(records, features=features)


def zip_folder(folder: Path) -> tuple[str, bytes]:
    """`folder` zipped, its contents at the archive's root: (file name `<folder name>.zip`, bytes). For a
    download of an exported DatasetDict folder or version; the archive is written beside `folder`."""
    archive = Path(shutil.make_archive(str(folder), "zip", folder))
    return archive.name, archive.read_bytes()
