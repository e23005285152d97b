"""`python -m curation`: run in-process through `main([...])`, plus one real subprocess for the
module entry point. Errors exit with status 2 and print the core's message on stderr."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
from sqlalchemy.engine import Engine

from curation.access.accounts import authenticate
from curation.cli.main import main
from curation.data.formats import open_table
from curation.data.projects import get_project
from curation.errors import InputError
from curation.models import User
from tests.conftest import REPO

ONEHOT_CSV = """\
example_no,annotator_id,conv_id,user,type.a,type.b,is_abuse.1,is_abuse.0,is_abuse.-1
1,A1,c1,hello bot,1,1,1,0,0
2,A2,c1,hello bot,0,0,1,0,0
3,A1,c2,you are dumb,1,0,0,0,1
4,A2,c2,you are dumb,0,1,0,1,0
"""


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_users_add_first_account_then_only_through_an_admin(engine: Engine, capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # the first account must be an admin, or nobody could ever add accounts
    assert cli(capsys, "users", "add", "lena", "--role", "lead", "--password", "lead-password") == (
        2, "", "error: field 'role': the first account must be an admin\n")
    assert cli(capsys, "users", "add", "root", "--role", "admin", "--password", "root-password")[0] == 0
    assert cli(capsys, "users", "add", "lena", "--role", "lead", "--password", "lead-password")[0] == 0
    # a lead may not add accounts
    assert cli(capsys, "--user", "lena", "users", "add", "bob", "--role", "annotator", "--password",
               "bob-password") == (2, "", "error: User 'lena' is lead; this needs admin.\n")
    assert cli(capsys, "--user", "lena", "users", "add", "boss", "--role", "admin", "--password",
               "boss-password")[0] == 2
    assert authenticate(engine, "bob", "bob-password") is None


def test_users_add_with_password_stdin_and_list(engine: Engine, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("root-password\n"))
    assert cli(capsys, "users", "add", "root", "--role", "admin", "--password-stdin") == (0, "added root (admin)\n", "")
    assert authenticate(engine, "root", "root-password") is not None
    # later accounts act as the first admin by default, or as --user / CURATION_USER
    assert cli(capsys, "users", "add", "anna", "--role", "annotator", "--password", "anna-password")[0] == 0
    monkeypatch.setenv("CURATION_USER", "anna")
    assert cli(capsys, "users", "add", "eve", "--role", "admin", "--password", "eve-password") == (
        2, "", "error: User 'anna' is annotator; this needs admin.\n")
    monkeypatch.delenv("CURATION_USER")
    code, out, _ = cli(capsys, "users", "list", "--json")
    assert code == 0 and json.loads(out) == [
        {"username": "anna", "role": "annotator", "active": True, "imported": False, "can_log_in": True},
        {"username": "root", "role": "admin", "active": True, "imported": False, "can_log_in": True}]
    assert cli(capsys, "users", "add", "root", "--role", "lead", "--password", "whatever-pw") == (
        2, "", "error: User 'root' already exists.\n")
    assert cli(capsys, "users", "add", "shorty", "--role", "lead", "--password", "short") == (
        2, "", "error: field 'password': a password needs at least 8 characters\n")


@pytest.fixture
def onehot_file(tmp_path: Path) -> Path:
    path = tmp_path / "abuse.csv"
    path.write_text(ONEHOT_CSV, encoding="utf-8")
    return path


def test_import_create_with_map_override_and_json_report(engine: Engine, admin: User, onehot_file: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    # the guess takes the first one-hot group (type.*), which is multi-hot: a clear error, nothing written
    code, out, err = cli(capsys, "import", str(onehot_file), "--project", "abuse", "--create")
    assert (code, out) == (2, "")
    assert err == ("error: abuse.csv, row 1, field 'type.a': exactly one one-hot label column must be set, "
                   "found 2 (a, b)\n")

    code, out, err = cli(capsys, "import", str(onehot_file), "--project", "abuse", "--create",
                         "--map", "label_onehot=is_abuse.*", "--source", "convabuse-sample", "--json")
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert {k: report[k] for k in ("project", "file", "rows", "examples_added", "annotations_added",
                                   "repeat_annotations", "annotators_created", "labels")} == {
        "project": "abuse", "file": "abuse.csv", "rows": 4, "examples_added": 2, "annotations_added": 4,
        "repeat_annotations": 0, "annotators_created": ["A1", "A2"], "labels": ["1", "0", "-1"]}
    assert get_project(engine, "abuse").labels == ["1", "0", "-1"]

    code, out, err = cli(capsys, "stats", "--project", "abuse", "--json")
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "project": "abuse", "task_type": "classification", "labels": ["1", "0", "-1"], "overlap_k": 2,
        "examples": 2, "by_status": {"disputed": 1, "labelled": 1}, "by_label": {"(none)": 1, "1": 1},
        "by_split": {"(none)": 2}, "by_source": {"convabuse-sample": 2}, "by_licence": {"(none)": 2},
        "annotations": 4, "annotators": 2, "exact_duplicate_groups": 0}

    # the text report; importing again adds nothing
    code, out, err = cli(capsys, "import", str(onehot_file), "--project", "abuse",
                         "--map", "label_onehot=is_abuse.*")
    assert (code, err) == (0, "")
    assert out == f"{onehot_file} -> abuse: 4 rows read; 0 examples added; 0 annotations added; " \
                  "4 annotations already present (skipped)\n"


def test_import_map_forms_and_dry_run(engine: Engine, admin: User, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "tickets.csv"
    path.write_text("ticket,body,category,lang\nT1,where is my parcel,shipping,en\nT1b,card declined,billing,de\n",
                    encoding="utf-8")
    code, out, err = cli(capsys, "import", str(path), "--project", "t", "--create", "--dry-run",
                         "--map", "id=ticket", "--map", "text=body", "--map", "metadata=")
    assert (code, err) == (0, "")
    shown = json.loads(out)
    assert shown["rows"] == 2 and shown["columns"] == ["ticket", "body", "category", "lang"]
    assert (shown["mapping"]["id"], shown["mapping"]["text"], shown["mapping"]["label"],
            shown["mapping"]["metadata"]) == (["ticket"], "body", "category", [])
    assert shown["preview"][0] == {"ticket": "T1", "body": "where is my parcel", "category": "shipping", "lang": "en"}
    assert cli(capsys, "stats", "--project", "t") == (2, "", "error: No project named 't'.\n")  # dry run: nothing

    code, out, err = cli(capsys, "import", str(path), "--project", "t", "--create", "--map", "id=ticket",
                         "--map", "text=body", "--map", "metadata=", "--licence", "CC0-1.0")
    assert code == 0 and out.endswith("2 rows read; 2 examples added; 0 annotations added; "
                                        "2 labels imported as final labels (experts will not review them)\n")
    code, out, _ = cli(capsys, "stats", "--project", "t")
    assert code == 0 and "by_licence: {'CC0-1.0': 2}" in out.splitlines()

    for bad, message in (("nonsense", "--map takes FIELD=COLUMN with FIELD one of id, text,"),
                         ("colour=body", "--map takes FIELD=COLUMN"),
                         ("text=missing", "tickets.csv, field 'text': column 'missing' is not in the file")):
        code, out, err = cli(capsys, "import", str(path), "--project", "t2", "--create", "--map", bad)
        assert (code, out) == (2, "") and err.startswith("error: ") and message in err
    assert cli(capsys, "import", str(path), "--project", "t3") == (
        2, "", "error: No project named 't3' (use create to make it).\n")


def test_projects_list_text_and_json(engine: Engine, admin: User, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "projects", "list") == (
        0, "no projects yet: create one on the Projects page or with `import --create`\n", "")
    path = tmp_path / "tickets.csv"
    path.write_text("ticket,body,category\nT1,where is my parcel,shipping\nT2,card declined,\nT3,refund me,billing\n",
                    encoding="utf-8")
    assert cli(capsys, "import", str(path), "--project", "Tickets", "--create", "--map", "id=ticket",
               "--map", "text=body", "--licence", "CC0-1.0")[0] == 0
    replies = write_replies(tmp_path / "replies.jsonl")
    assert cli(capsys, "import", str(replies), "--project", "Replies", "--create", "--task", "generation")[0] == 0
    code, out, err = cli(capsys, "projects", "list", "--json")
    assert (code, err) == (0, "")
    assert json.loads(out) == [
        {"name": "Replies", "task_type": "generation", "items": 1, "by_status": {"new": 1}, "overlap_k": 2,
         "final_label_rule": "majority"},
        {"name": "Tickets", "task_type": "classification", "items": 3, "by_status": {"labelled": 2, "new": 1},
         "overlap_k": 2, "final_label_rule": "majority"}]
    code, out, _ = cli(capsys, "projects", "list")
    assert code == 0 and out.splitlines() == [
        "Replies  [generation]  1 items (new 1)  k=2  rule=majority",
        "Tickets  [classification]  3 items (labelled 2, new 1)  k=2  rule=majority"]


def write_replies(path: Path) -> Path:
    path.write_text(json.dumps({"id": "r1", "prompt": "Where is my parcel?", "response": "On its way."}) + "\n",
                    encoding="utf-8")
    return path


def test_dry_run_warns_when_the_id_merges_rows_with_different_texts(engine: Engine, admin: User, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "turns.csv"
    path.write_text("example_no,annotator_id,conv_id,agent,user,is_abuse.1,is_abuse.0\n"
                    "1,A1,c1,Hello,hi,1,0\n2,A2,c1,Hello,hi,1,0\n3,A1,c1,Still there?,hi,0,1\n", encoding="utf-8")
    code, out, err = cli(capsys, "import", str(path), "--project", "t", "--create", "--dry-run")
    assert code == 0 and json.loads(out)["mapping"]["id"] == ["conv_id", "user"]
    assert json.loads(out)["warnings"] == [err.removeprefix("warning: ").rstrip("\n")]
    assert err.startswith("warning: the id (conv_id, user) merges rows with different texts: 1 of 1 items carry "
                          "several values in agent (1 items)") and "--map id=conv_id,user,agent" in err
    code, out, err = cli(capsys, "import", str(path), "--project", "t", "--create", "--dry-run",
                         "--map", "id=conv_id,agent,user")
    assert (code, err, json.loads(out)["warnings"]) == (0, "", [])


def test_import_duplicate_rows_listed(engine: Engine, admin: User, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "dups.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in ["a", "b", "a", "a", "b", "c"]))
    code, out, _ = cli(capsys, "import", str(path), "--project", "d", "--create")
    assert code == 0
    assert out.splitlines() == [
        f"{path} -> d: 6 rows read; 6 examples added; 0 annotations added; 2 groups of exact duplicates (5 rows)",
        "  exact duplicates: rows 1, 3, 4",
        "  exact duplicates: rows 2, 5"]


@pytest.mark.parametrize("name,content", [
    ("latin.csv", b"text,label\nok,a\ncaf\xe9,b\n"),
    ("broken.jsonl", b'{"text": "a"}\n{"text": \n'),
    ("empty.jsonl", b""),
    ("ragged.tsv", b"text\tlabel\na\tb\nc\td\te\n"),
])
def test_bad_input_exits_2_with_the_core_message(engine: Engine, admin: User, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str], name: str,
                                                 content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError) as core:
        open_table(path)
    assert cli(capsys, "import", str(path), "--project", "bad", "--create") == (2, "", f"error: {core.value}\n")
    assert cli(capsys, "stats", "--project", "bad")[0] == 2  # no project left behind


def test_export_all_formats(engine: Engine, admin: User, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": "a", "text": "one", "label": "x", "split": "train"},
        {"id": "b", "text": "two", "label": "y", "split": "test"},
        {"id": "c", "text": "three", "label": "x", "split": "train"}]))
    assert cli(capsys, "import", str(src), "--project", "e", "--create")[0] == 0
    expected = [{"id": "a", "text": "one", "label": "x", "status": "labelled", "split": "train", "source": None,
                 "licence": None, "metadata": "{}"},
                {"id": "b", "text": "two", "label": "y", "status": "labelled", "split": "test", "source": None,
                 "licence": None, "metadata": "{}"},
                {"id": "c", "text": "three", "label": "x", "status": "labelled", "split": "train", "source": None,
                 "licence": None, "metadata": "{}"}]
    features = datasets.Features({k: datasets.Value("string") for k in expected[0]})
    cache = str(tmp_path / "cache")
    for fmt in ("jsonl", "csv", "parquet", "hf"):
        out_path = tmp_path / "out" / f"e-{fmt}"
        assert cli(capsys, "export", "--project", "e", "--format", fmt, "--out", str(out_path)) == (
            0, f"3 records -> {out_path} ({fmt})\n", "")
        if fmt == "hf":
            back = datasets.load_from_disk(str(out_path))
            assert back["train"].to_list() == [expected[0], expected[2]] and back["test"].to_list() == [expected[1]]
        else:
            loader = {"jsonl": "json"}.get(fmt, fmt)
            extra = {"features": features} if fmt == "csv" else {}
            back = datasets.load_dataset(loader, data_files=str(out_path), split="train", cache_dir=cache, **extra)
            assert back.to_list() == expected, fmt
    out_path = tmp_path / "out" / "filtered.jsonl"
    assert cli(capsys, "export", "--project", "e", "--format", "jsonl", "--out", str(out_path), "--label", "x",
               "--split", "train", "--search", "THREE")[0] == 0
    assert [json.loads(line)["id"] for line in out_path.read_text().splitlines()] == ["c"]
    assert cli(capsys, "export", "--project", "nope", "--format", "jsonl", "--out", str(out_path)) == (
        2, "", "error: No project named 'nope'.\n")
    with pytest.raises(SystemExit) as usage:
        main(["export", "--project", "e", "--format", "xlsx", "--out", str(out_path)])
    assert usage.value.code == 2


def test_module_entry_point_in_a_subprocess(engine: Engine, admin: User, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src.jsonl"
    src.write_text(json.dumps({"id": "a", "text": "one", "label": "x"}) + "\n")
    assert cli(capsys, "import", str(src), "--project", "sub", "--create")[0] == 0
    env = {**os.environ, "DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": str(engine.url.render_as_string(
        hide_password=False)), "LOAD_DEMO": "false", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "curation", "stats", "--project", "sub", "--json"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)
    assert (stats["project"], stats["examples"], stats["by_label"]) == ("sub", 1, {"x": 1})


def test_an_admin_resets_a_password_from_stdin(engine: Engine, admin: User, lead: User, annotator: User,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("anna-new-password\n"))
    assert cli(capsys, "--user", "root", "users", "set", "anna", "--password-stdin") == \
        (0, "anna: password set\nanna: annotator, active\n", "")
    assert authenticate(engine, "anna", "anna-new-password") is not None
    assert authenticate(engine, "anna", "annotator-password") is None
    monkeypatch.setattr(sys, "stdin", io.StringIO("lena-takes-over\n"))
    code, _, err = cli(capsys, "--user", "lena", "users", "set", "anna", "--password-stdin")
    assert code == 2 and "lena' is lead; this needs admin" in err  # leads cannot
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    code, _, err = cli(capsys, "--user", "root", "users", "set", "anna", "--password-stdin")
    assert code == 2 and "at least 8 characters" in err
    assert authenticate(engine, "anna", "anna-new-password") is not None
