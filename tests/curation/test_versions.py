"""Dataset versions: building a candidate, the split, approval (roles, overrides, leakage), the hash and
its verification (tamper test), immutability, diff, export with the dataset card, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from curation.cli.main import main
from curation.data.formats import open_table
from curation.data.importer import import_table
from curation.data.mapping import ColumnMapping
from curation.data.projects import create_project
from curation.db import read_session
from curation.errors import Conflict, InputError, PermissionDenied
from curation.models import TaskType, User
from curation.review.adjudication import adjudicate, exclude_example
from curation.versions.approve import approve_version, edits_since
from curation.versions.build import BuildOptions, create_candidate
from curation.versions.card import read_card_metadata
from curation.versions.diff import diff_versions
from curation.versions.export import export_version
from curation.versions.records import (
    get_version,
    list_versions,
    verify_version,
    version_dataset_dict,
    version_items,
    version_provenance,
)
from tests.conftest import BOTH_BACKENDS

LABELS = ["billing", "shipping"]
EXACT = BuildOptions(use_embeddings=False)  # the fast exact-duplicate path; one test runs the embeddings


def ticket_rows(n: int = 40) -> list[dict[str, Any]]:
    """n labelled tickets (alternating labels), plus: a case variant of t001 (a near-duplicate group), an
    exact duplicate of t002, and an unlabelled ticket."""
    rows = [{"id": f"t{i:03d}", "text": f"Ticket number {i} about {LABELS[i % 2]}", "label": LABELS[i % 2],
             "source": "helpdesk", "licence": "CC0-1.0"} for i in range(1, n + 1)]
    rows.append({"id": "v001", "text": "TICKET  number 1 ABOUT shipping", "label": "shipping", "source": "helpdesk",
                 "licence": "CC0-1.0"})
    rows.append({**rows[1], "id": "d002"})
    rows.append({"id": "u001", "text": "no label yet", "label": None, "source": "helpdesk", "licence": "CC0-1.0"})
    return rows


def make_project(engine: Engine, lead: User, tmp_path: Path, rows: list[dict[str, Any]] | None = None,
                 name: str = "Tickets", split: bool = False) -> int:
    project = create_project(engine, lead, name, labels=LABELS)
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in (rows or ticket_rows())), encoding="utf-8")
    import_table(engine, lead, open_table(path), ColumnMapping(id=["id"], text="text", label="label", source="source",
                                                                licence="licence", split="split" if split else None,
                                                                metadata=[]), name)
    assert project.id is not None
    return project.id


def example_id(engine: Engine, external_id: str) -> int:
    with read_session(engine) as session:
        return session.execute(text("select id from example where external_id = :e"), {"e": external_id}).scalar_one()


def by_id(engine: Engine, version_id: int, lead: User) -> dict[str, Any]:
    return {item.external_id: item for item in version_items(engine, lead, version_id)}


@BOTH_BACKENDS
def test_candidate_snapshots_final_labels_split_and_hash(engine: Engine, lead: User, tmp_path: Path) -> None:
    project_id = make_project(engine, lead, tmp_path)
    exclude_example(engine, lead, example_id(engine, "t003"), "off_task")
    adjudicate(engine, lead, example_id(engine, "t004"), reason="it is about a parcel", final_label="shipping")
    version = create_candidate(engine, lead, project_id, BuildOptions(eval_fraction=0.25, seed=7, use_embeddings=False))
    items = by_id(engine, version.id, lead)
    assert version.number == 1 and version.status == "candidate"
    assert "t003" not in items and "u001" not in items and "d002" not in items  # excluded, unlabelled, duplicate
    assert items["t004"].label == "shipping"  # the lead's decision
    assert version.item_count == len(items) == 40
    assert version.stats["left_out"] == {"excluded": 1, "exact duplicate": 1, "no final label (new)": 1}
    assert items["t001"].split == items["v001"].split  # a near-duplicate group stays on one side
    for label in LABELS:  # stratified: each label has its share in eval
        in_eval = sum(1 for i in items.values() if i.label == label and i.split == "eval")
        assert 3 <= in_eval <= 7, (label, in_eval)
    assert verify_version(engine, lead, version.id).ok
    again = create_candidate(engine, lead, project_id, BuildOptions(eval_fraction=0.25, seed=7, use_embeddings=False))
    assert again.number == 2 and again.content_hash == version.content_hash  # same state, same seed: same items
    checks = {c["key"]: c for c in version.checklist["items"]}
    assert checks["leakage"]["status"] == "pass" and checks["near_duplicates"]["value"].startswith("1 pair: 0 with conflicting labels, 0 across train/eval")
    assert checks["attestation"]["status"] == "fail"  # until the lead attests at approval
    assert version.checklist["thresholds"]["max_tokens"] == 2048


@BOTH_BACKENDS
def test_tamper_with_an_approved_item_and_verify_fails(engine: Engine, lead: User, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    project_id = make_project(engine, lead, tmp_path)
    version = create_candidate(engine, lead, project_id, EXACT)
    approve_version(engine, lead, version.id, attest=True, override_reason="t001/v001 variants are intended")
    assert main(["version", "verify", str(version.id)]) == 0
    with engine.begin() as conn:
        conn.execute(text("update datasetversionitem set text = 'changed' where version_id = :v and external_id = 't005'"),
                     {"v": version.id})
    result = verify_version(engine, lead, version.id)
    assert not result.ok and result.mismatched_items == ("t005",) and result.actual_hash != result.stored_hash
    capsys.readouterr()
    assert main(["version", "verify", str(version.id)]) == 1
    err = capsys.readouterr().err
    assert "was changed after it was built" in err and version.content_hash in err
    with pytest.raises(Conflict, match="changed after"):
        export_version(engine, lead, version.id, tmp_path / "out")


def test_annotator_cannot_approve_through_core_or_cli(engine: Engine, lead: User, annotator: User, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    project_id = make_project(engine, lead, tmp_path)
    with pytest.raises(PermissionDenied):
        create_candidate(engine, annotator, project_id, EXACT)
    version = create_candidate(engine, lead, project_id, EXACT)
    with pytest.raises(PermissionDenied):
        approve_version(engine, annotator, version.id, attest=True, override_reason="an annotator tries this")
    assert main(["--user", "anna", "version", "approve", str(version.id), "--attest",
                 "--override-reason", "an annotator tries this"]) == 2
    assert "anna' is annotator" in capsys.readouterr().err
    assert get_version(engine, version.id).status == "candidate"


@BOTH_BACKENDS
def test_leaking_eval_split_is_refused_without_override(engine: Engine, lead: User, tmp_path: Path) -> None:
    rows = [{**row, "split": "train" if i % 4 else "eval"} for i, row in enumerate(ticket_rows(24)[:24])]
    rows.append({"id": "leak", "text": "ticket NUMBER 2 about billing", "label": "billing", "source": "helpdesk",
                 "licence": "CC0-1.0", "split": "eval"})  # t002 is in train
    project_id = make_project(engine, lead, tmp_path, rows, split=True)
    version = create_candidate(engine, lead, project_id, BuildOptions(keep_existing_splits=True, use_embeddings=False))
    checks = {c["key"]: c for c in version.checklist["items"]}
    assert checks["leakage"]["status"] == "fail" and "leak" in checks["leakage"]["detail"]
    with pytest.raises(Conflict, match="Eval items leaking from train"):
        approve_version(engine, lead, version.id, attest=True)
    with pytest.raises(InputError, match="at least 10"):
        approve_version(engine, lead, version.id, attest=True, override_reason="ok")
    approved = approve_version(engine, lead, version.id, attest=True, note="for a smoke run",
                               override_reason="the leaking item is a known paraphrase")
    assert approved.override_reason == "the leaking item is a known paraphrase"
    provenance = version_provenance(engine, version.id)
    assert provenance["override_reason"] == approved.override_reason
    assert set(provenance["overridden_checks"]) == {"leakage", "near_duplicates"}
    assert provenance["approved_by"] == "lena" and provenance["approval_note"] == "for a smoke run"
    assert provenance["approver"] == "lena" and provenance["counts_per_licence"] == {"CC0-1.0": 25}
    assert "alpha" in provenance["agreement"] and "alpha" in provenance["agreement_at_build"]
    with pytest.raises(Conflict, match="already approved"):
        approve_version(engine, lead, version.id, attest=True, override_reason="the leaking item again")


def test_clean_candidate_approves_without_override_but_needs_attestation(engine: Engine, lead: User,
                                                                        tmp_path: Path) -> None:
    project_id = make_project(engine, lead, tmp_path, ticket_rows(40)[:40])
    version = create_candidate(engine, lead, project_id, EXACT)
    with pytest.raises(Conflict, match="attestation"):
        approve_version(engine, lead, version.id)
    approved = approve_version(engine, lead, version.id, attest=True, note="first")
    assert approved.status == "approved" and approved.override_reason is None
    assert approved.approved_by_id == lead.id and approved.approved_at is not None


def test_later_edits_never_change_an_approved_version_and_diff_shows_them(engine: Engine, lead: User,
                                                                          tmp_path: Path) -> None:
    project_id = make_project(engine, lead, tmp_path, ticket_rows(40)[:40])
    v1 = approve_version(engine, lead, create_candidate(engine, lead, project_id, EXACT).id, attest=True)
    adjudicate(engine, lead, example_id(engine, "t001"), reason="really billing", final_label="billing")
    exclude_example(engine, lead, example_id(engine, "t002"), "duplicate")
    with engine.begin() as conn:
        conn.execute(text("update example set text = 'edited text' where external_id = 't006'"))
    assert by_id(engine, v1.id, lead)["t001"].label == "shipping" and verify_version(engine, lead, v1.id).ok
    assert edits_since(engine, lead, get_version(engine, v1.id)) == 2  # the decision and the exclusion (raw SQL: no stamp)
    v2 = create_candidate(engine, lead, project_id, EXACT)
    diff = diff_versions(engine, lead, v1.id, v2.id)
    assert diff.relabelled == [{"id": "t001", "from": "shipping", "to": "billing"}]
    assert diff.removed == ["t002"] and diff.added == [] and diff.content_changed == ["t006"]
    assert diff.stats["items"] == {"a": 40, "b": 39, "change": -1}
    assert diff.stats["labels.shipping"]["change"] == -1 and "labels.billing" not in diff.stats  # +1 -1
    assert [v.number for v in list_versions(engine, lead, project_id)] == [2, 1]


def test_export_writes_datasetdict_jsonl_parquet_and_card(engine: Engine, lead: User, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{**row, "label": "billing"} if row["id"] == "v001" else row for row in ticket_rows()]
    project_id = make_project(engine, lead, tmp_path, rows)  # v001 now conflicts with t001: a failing check
    version = create_candidate(engine, lead, project_id, EXACT)
    with pytest.raises(Conflict, match="only approved"):
        export_version(engine, lead, version.id, tmp_path / "cand")
    approve_version(engine, lead, version.id, attest=True, override_reason="variants checked by hand")
    out = tmp_path / "export"
    assert main(["--user", "lena", "version", "export", str(version.id), "--out", str(out)]) == 0
    loaded = datasets.load_from_disk(str(out / "hf"))
    assert set(loaded) == {"train", "eval"} and loaded["train"].column_names == ["id", "text", "label", "source",
                                                                                  "licence"]
    n_train = len(loaded["train"])
    assert sum(1 for _ in (out / "jsonl" / "train.jsonl").open()) == n_train
    assert len(datasets.Dataset.from_parquet(str(out / "parquet" / "eval.parquet"))) == len(loaded["eval"])
    card = (out / "README.md").read_text(encoding="utf-8")
    meta = read_card_metadata(card)
    assert meta["license"] == ["cc0-1.0"] and meta["sources"] == {"helpdesk": 41}
    assert meta["curation"]["content_sha256"] == version.content_hash and meta["curation"]["approved_by"] == "lena"
    assert meta["curation"]["override_reason"] == "variants checked by hand"
    assert meta["curation"]["label_distribution"] == {"billing": 21, "shipping": 20}
    assert "Approved with an override" in card
    capsys.readouterr()
    v2 = create_candidate(engine, lead, project_id, BuildOptions(seed=3, use_embeddings=False))
    assert main(["--user", "lena", "version", "diff", str(version.id), str(v2.id), "--json"]) == 0
    diff = json.loads(capsys.readouterr().out)
    assert diff["added"] == [] and diff["removed"] == [] and diff["a_number"] == 1 and diff["b_number"] == 2


def test_generation_version_columns_and_format_checks(engine: Engine, lead: User, tmp_path: Path) -> None:
    create_project(engine, lead, "Replies", TaskType.generation)
    rows = [{"id": f"r{i}", "prompt": f"Question {i}?", "response": "" if i == 3 else f"Answer {i}.",
             "source": "macros", "licence": "CC0-1.0" if i != 4 else None} for i in range(1, 11)]
    path = tmp_path / "replies.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    report = import_table(engine, lead, open_table(path), ColumnMapping(
        id=["id"], prompt="prompt", response="response", source="source", licence="licence", metadata=[]),
        "Replies", responses_as="final")
    assert (report.final_responses, report.responses_missing) == (9, 1)
    assert "9 responses imported as final: experts will not see them" in report.summary()
    with read_session(engine) as session:
        project_id = session.execute(text("select id from project where name = 'Replies'")).scalar_one()
    version = create_candidate(engine, lead, project_id, EXACT)
    checks = {c["key"]: c for c in version.checklist["items"]}
    # r3 has no response: nothing to be final with, so it waits for review and stays out
    assert version.item_count == 9 and version.stats["left_out"] == {"response not reviewed (new)": 1}
    assert checks["empty"]["status"] == "pass"
    assert checks["reviewed_responses"]["status"] == "warn"
    assert checks["reviewed_responses"]["value"] == "0 reviewed by experts, 9 imported as final"
    assert checks["reviewed_responses"]["detail"] == "1 item left out: response not reviewed"
    assert checks["provenance"]["status"] == "fail" and "r4" in checks["provenance"]["detail"]
    assert checks["chat_template"]["status"] == "pass" and checks["label_coverage"]["status"] == "n/a"
    dd = version_dataset_dict(engine, version.id)
    assert dd["train"].column_names == ["id", "messages", "source", "licence"]
    first = dd["train"][0]["messages"]
    assert [m["role"] for m in first] == ["user", "assistant"]


def test_a_generation_version_leaves_out_unreviewed_responses(engine: Engine, admin: User, lead: User,
                                                             tmp_path: Path) -> None:
    """Reviewed means reviewed (issue 17): imported responses are drafts until experts agree on them,
    a lead settles them, or the import says they are final; the checklist counts the rest."""
    from curation.access.accounts import create_user
    from curation.models import Role
    from curation.review.annotate import submit_annotation

    project = create_project(engine, lead, "Drafts", TaskType.generation, overlap_k=2)
    rows = [{"id": f"r{i}", "prompt": f"Question number {i}?", "response": f"Answer number {i}.",
             "source": "macros", "licence": "CC0-1.0"} for i in range(1, 7)]
    path = tmp_path / "drafts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    mapping = ColumnMapping(id=["id"], prompt="prompt", response="response", source="source", licence="licence",
                            metadata=[])
    report = import_table(engine, lead, open_table(path), mapping, "Drafts")
    assert report.final_responses == 0 and "imported as final" not in report.summary()
    with pytest.raises(Conflict, match="no items ready"):  # nothing reviewed yet: no version at all
        create_candidate(engine, lead, project.id, EXACT)
    ids = {r["external_id"]: r["id"] for r in _examples(engine, project.id)}
    alice = create_user(engine, admin, "alice", Role.annotator, "alice-password")
    bob = create_user(engine, admin, "bob", Role.annotator, "bob-password")
    for annotator in (alice, bob):  # r1 and r2: two experts keep the response (k = 2 agree)
        submit_annotation(engine, annotator, ids["r1"], response="Answer number 1.", rating=5)
        submit_annotation(engine, annotator, ids["r2"], response="Answer number 2, reviewed.", rating=4)
    submit_annotation(engine, alice, ids["r3"], response="Answer number 3.", rating=5)  # one of two: still in review
    adjudicate(engine, lead, ids["r4"], final_response="Answer number 4, settled.", reason="checked by the lead")
    version = create_candidate(engine, lead, project.id, EXACT)
    items = by_id(engine, version.id, lead)
    assert sorted(items) == ["r1", "r2", "r4"]
    assert items["r2"].messages[-1]["content"] == "Answer number 2, reviewed."
    assert version.stats["left_out"] == {"response not reviewed (in_review)": 1, "response not reviewed (new)": 2}
    check = {c["key"]: c for c in version.checklist["items"]}["reviewed_responses"]
    assert (check["status"], check["value"], check["detail"], check["measured"]) == (
        "warn", "3 reviewed by experts, 0 imported as final", "3 items left out: response not reviewed", 3.0)


def _examples(engine: Engine, project_id: int) -> list[dict[str, Any]]:
    with read_session(engine) as session:
        return [dict(r._mapping) for r in session.execute(
            text("select id, external_id from example where project_id = :p"), {"p": project_id})]


def test_cli_create_approve_and_list(engine: Engine, lead: User, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    make_project(engine, lead, tmp_path, ticket_rows(40)[:40])
    assert main(["--user", "lena", "version", "create", "--project", "Tickets", "--json", "--no-embeddings"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["status"] == "candidate" and created["blocking"] == ["attestation"]
    assert main(["--user", "lena", "version", "approve", str(created["version_id"])]) == 2
    assert "attestation" in capsys.readouterr().err
    assert main(["--user", "lena", "version", "approve", str(created["version_id"]), "--attest", "--note", "ok"]) == 0
    assert "approved" in capsys.readouterr().out
    assert main(["version", "list", "--project", "Tickets"]) == 0
    assert "v1 · approved" in capsys.readouterr().out


def test_embedding_path_finds_paraphrases_keeps_them_on_one_side_and_measures_clusters(
        engine: Engine, lead: User, tmp_path: Path) -> None:
    """The one test on sentence embeddings (curation.embeddings' packaged MiniLM, on CPU)."""
    rows = ticket_rows(40)[:40] + [
        {"id": "p001", "text": "Ticket number 1 regarding shipping", "label": "shipping", "source": "helpdesk",
         "licence": "CC0-1.0"}]  # a paraphrase of t001, not an exact duplicate
    project_id = make_project(engine, lead, tmp_path, rows)
    exact = create_candidate(engine, lead, project_id, EXACT)
    near = create_candidate(engine, lead, project_id)  # default: embeddings
    exact_checks = {c["key"]: c for c in exact.checklist["items"]}
    checks = {c["key"]: c for c in near.checklist["items"]}
    assert exact_checks["near_duplicates"]["measured"] == 0 and exact_checks["clusters"]["value"] == "not measured"
    assert int(checks["near_duplicates"]["value"].split()[0]) >= 1 and "cosine" in checks["near_duplicates"]["detail"]
    assert checks["near_duplicates"]["status"] == "pass"  # a paraphrase with its label, on one side: no harm
    assert "k-means" in checks["clusters"]["detail"] and checks["clusters"]["measured"] >= 1
    assert "cleanlab" in checks["suspected_errors"]["detail"]
    items = by_id(engine, near.id, lead)
    assert items["t001"].split == items["p001"].split
    assert checks["leakage"]["status"] == "pass"


def _tamper_label(engine: Engine, version_id: int) -> None:
    """The attack from issue 14: relabel approved train rows behind the workbench's back."""
    with engine.begin() as conn:
        changed = conn.execute(text("update datasetversionitem set label = 'bug' where version_id = :v "
                                    "and split = 'train' and label = 'billing'"), {"v": version_id}).rowcount
    assert changed > 0


def test_a_tampered_version_is_neither_exported_nor_pushed(engine: Engine, lead: User, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from curation.versions.export import push_version_to_hub

    project_id = make_project(engine, lead, tmp_path)
    version = approve_version(engine, lead, create_candidate(engine, lead, project_id, EXACT).id, attest=True,
                              override_reason="variants checked by hand")
    _tamper_label(engine, version.id)
    message = verify_version(engine, lead, version.id).message
    assert "was changed after it was built" in message
    with pytest.raises(Conflict) as refused:
        export_version(engine, lead, version.id, tmp_path / "out")
    assert str(refused.value) == f"Refusing to export: {message}"
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
    with pytest.raises(Conflict) as refused:  # refused before any network call (none is reachable here)
        push_version_to_hub(engine, lead, version.id, "someone/tickets", token="hf_not_used")
    assert str(refused.value) == f"Refusing to push: {message}"
    capsys.readouterr()
    assert main(["--user", "lena", "version", "export", str(version.id), "--out", str(tmp_path / "cli")]) == 2
    assert "Refusing to export" in capsys.readouterr().err and not (tmp_path / "cli").exists()


def test_version_reads_need_a_lead(engine: Engine, lead: User, annotator: User, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    project_id = make_project(engine, lead, tmp_path)
    version = create_candidate(engine, lead, project_id, EXACT)
    for read in (lambda: list_versions(engine, annotator, project_id),
                 lambda: version_items(engine, annotator, version.id),
                 lambda: verify_version(engine, annotator, version.id),
                 lambda: edits_since(engine, annotator, version)):
        with pytest.raises(PermissionDenied, match="anna' is annotator"):
            read()
    assert len(list_versions(engine, lead, project_id)) == 1
    capsys.readouterr()
    for command in (["verify", str(version.id)], ["show", str(version.id)], ["list", "--project", "Tickets"]):
        assert main(["--user", "anna", "version", *command]) == 2, command
        assert "anna' is annotator" in capsys.readouterr().err


def test_versions_imports_the_analyses_it_uses() -> None:
    """No fallback paths for modules that exist: the analyses are the ones the pages use."""
    from curation.embeddings import dedup, diversity, quality, splits
    from curation.versions import build as versions

    assert versions.build_split is splits.build_split and versions.find_leakage is splits.find_leakage
    assert versions.components is dedup.components and versions.cluster is diversity.cluster
    assert versions.find_label_issues_in_project is quality.find_label_issues_in_project
    assert not hasattr(versions, "_fallback_split") and not hasattr(versions, "_normalised")


@BOTH_BACKENDS
def test_version_items_with_a_limit_are_the_first_of_the_full_order(engine: Engine, lead: User,
                                                                     tmp_path: Path) -> None:
    """The page's preview: the database picks the first `limit` items, train before eval, by external id."""
    project_id = make_project(engine, lead, tmp_path)
    version = create_candidate(engine, lead, project_id, BuildOptions(eval_fraction=0.25, seed=7, use_embeddings=False))
    everything = [(i.split, i.external_id) for i in version_items(engine, lead, version.id)]
    splits = [split for split, _ in everything]
    assert splits == ["train"] * splits.count("train") + ["eval"] * splits.count("eval") and "eval" in splits
    for limit in (1, 5, len(everything) - 3, len(everything) + 10):
        first = [(i.split, i.external_id) for i in version_items(engine, lead, version.id, limit=limit)]
        assert first == everything[:limit]
