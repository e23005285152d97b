"""curation.splits: groups stay on one side, label strata, determinism, leakage found and absent."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.engine import Engine

from curation.data.formats import open_table
from curation.data.importer import import_table
from curation.data.mapping import ColumnMapping
from curation.data.projects import create_project
from curation.embeddings.encode import load_items
from curation.embeddings.splits import apply_split, build_split, find_leakage, project_leakage, project_split
from curation.models import User
from curation.settings import get_settings
from tests.curation.embedding_helpers import fill_cache, planted, unit


def _data(
    n: int = 400, pairs: int = 40
) -> tuple[list[int], list[str], list[str], np.ndarray, set[tuple[int, int]]]:
    vectors, truth = planted(n, pairs, dim=48, seed=5)
    ids = [1000 + i for i in range(n)]
    labels = [["a", "b", "c", "d"][i % 4] for i in range(n)]
    texts = [f"text {i}" for i in range(n)]
    texts[7] = texts[3] = "Same text"  # an exact duplicate as well
    return ids, labels, texts, vectors, truth


def test_groups_stay_together_and_labels_are_stratified() -> None:
    ids, labels, texts, vectors, truth = _data()
    split = build_split(ids, labels, texts, vectors, eval_fraction=0.25, seed=1)
    assert set(split) == set(ids) and set(split.values()) == {"train", "eval"}
    for a, b in [*truth, (3, 7)]:
        assert split[ids[a]] == split[ids[b]]
    for label in "abcd":
        sides = Counter(split[i] for i, lab in zip(ids, labels) if lab == label)
        assert abs(sides["eval"] / 100 - 0.25) <= 0.03
    assert find_leakage(split, ids, texts, vectors) == []


def test_deterministic_and_seeded() -> None:
    ids, labels, texts, vectors, _ = _data()
    one = build_split(ids, labels, texts, vectors, seed=3)
    reversed_input = build_split(ids[::-1], labels[::-1], texts[::-1], vectors[::-1], seed=3)
    assert one == reversed_input
    assert one != build_split(ids, labels, texts, vectors, seed=4)
    with pytest.raises(ValueError):
        build_split(ids, labels, texts, vectors, eval_fraction=1.5)


def test_leakage_finds_planted_pairs_across_sides() -> None:
    ids, _labels, texts, vectors, truth = _data()
    split = {i: "train" for i in ids}
    crossing = list(truth)[:10]
    for _, b in crossing:
        split[ids[b]] = "test"
    split[ids[7]] = "eval"  # exact duplicate of 3 (train)
    leaks = find_leakage(split, ids, texts, vectors)
    found = {(leak.train_id, leak.eval_id) for leak in leaks}
    assert {(ids[a], ids[b]) for a, b in crossing} <= found
    exact = next(leak for leak in leaks if leak.eval_id == ids[7])
    assert exact.kind == "exact" and exact.train_id == ids[3] and exact.eval_side == "eval"
    assert find_leakage(split, ids, texts, None) == [exact]  # without vectors: exact only


def test_project_leakage_split_and_cli(
    engine: Engine,
    lead: User,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("EMBEDDING_MODEL", "test-vectors")
    get_settings.cache_clear()
    project = create_project(engine, lead, "Leaky", labels=["a", "b"])
    texts = [f"item {i}" for i in range(20)]
    rows = [
        {"id": f"l{i}", "text": t, "label": "ab"[i % 2], "split": "test" if i in (1, 5) else "train"}
        for i, t in enumerate(texts)
    ]
    path = tmp_path / "l.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    import_table(
        engine,
        lead,
        open_table(path),
        ColumnMapping(id=["id"], text="text", label="label", split="split", metadata=[]),
        "Leaky",
    )
    rng = np.random.default_rng(0)
    vectors = unit(rng.normal(size=(20, 16)))
    vectors[1] = unit(vectors[0] + 0.02 * rng.normal(size=16))  # test item 1 ~ train item 0
    fill_cache(texts, vectors)
    project_id = project.id
    assert project_id is not None and len(load_items(engine, lead, project_id)) == 20
    leaks, sizes = project_leakage(engine, lead, project_id)
    assert sizes == {"train": 18, "test": 2} and len(leaks) == 1 and leaks[0].kind == "near"

    from curation.cli.main import main

    assert main(["--user", "lena", "leakage", "--project", "Leaky", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["leaks"]) == 1

    split = project_split(engine, lead, project_id, eval_fraction=0.2, seed=0)
    assert apply_split(engine, lead, project_id, split) == 20
    leaks, sizes = project_leakage(engine, lead, project_id)
    assert leaks == [] and set(sizes) == {"train", "eval"}
