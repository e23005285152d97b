"""curation.embeddings (cache by model + content hash, tiny model built from a config), the background
job file, and one slow test on the packaged all-MiniLM-L6-v2."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.engine import Engine

from curation.data.projects import create_project
from curation.embeddings.encode import (
    EmbeddingCache,
    embed_texts,
    encode_texts,
    example_text,
    load_items,
    model_key,
    normalise_text,
    resolve_model,
)
from curation.embeddings.jobs import DONE, FAILED, RUNNING, job_path, read_job, run_job, start_job, write_job
from curation.models import User
from curation.settings import get_settings
from tests.curation.embedding_helpers import import_texts, tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    return tiny_model(tmp_path_factory.mktemp("models"))


TEXTS = ["my card has not arrived", "how do I reset my password?", "refund please", "my card has not arrived"]


def test_encode_gives_unit_vectors(tiny: str) -> None:
    vectors = encode_texts(TEXTS, tiny, batch_size=2)
    assert vectors.shape == (4, 32) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert np.allclose(vectors[0], vectors[3], atol=1e-5)  # same text, same vector, whatever the batch


def test_cache_encodes_only_new_or_changed_text(tiny: str) -> None:
    first = embed_texts(TEXTS, tiny)
    assert (first.encoded, first.cached) == (4, 0)
    again = embed_texts(TEXTS, tiny)
    assert (again.encoded, again.cached) == (0, 4)
    assert np.allclose(first.vectors, again.vectors)
    changed = embed_texts([*TEXTS[:3], "refund please!"], tiny)
    assert (changed.encoded, changed.cached) == (1, 3)
    # A new cache object (another process) reads the shards from disk.
    assert len(EmbeddingCache(tiny)) == 4  # 3 distinct texts + the changed one
    progress: list[tuple[int, int]] = []
    embed_texts(TEXTS, tiny, progress=lambda done, total: progress.append((done, total)))
    assert progress[-1] == (4, 4)


def test_an_empty_explicit_cache_is_used_not_the_default(tiny: str, tmp_path: Path) -> None:
    embed_texts(TEXTS, tiny)  # the default cache under DATA_DIR now holds these texts
    explicit = EmbeddingCache(tiny, root=tmp_path / "cold")
    assert len(explicit) == 0
    cold = embed_texts(TEXTS, tiny, cache=explicit)
    assert (cold.encoded, cold.cached) == (4, 0)  # an empty cache is still the cache asked for
    assert len(EmbeddingCache(tiny, root=tmp_path / "cold")) == 3


def test_cache_is_per_model_and_compacts(tiny: str, tmp_path: Path) -> None:
    assert model_key(tiny) != model_key("some/other-model")
    cache = EmbeddingCache(tiny)
    for i in range(5):
        cache.add([bytes([i]) * 32], np.full((1, 32), i, dtype=np.float32))
    cache.compact()
    assert len(list(cache.root.glob("shard-*.npz"))) == 1
    found, vectors = EmbeddingCache(tiny).lookup([bytes([3]) * 32, bytes([9]) * 32])
    assert found.tolist() == [True, False] and vectors[0, 0] == 3


def test_bf16_path_stays_close_to_fp32(tiny: str, monkeypatch: pytest.MonkeyPatch) -> None:

    monkeypatch.setenv("EMBEDDING_PRECISION", "fp32")
    get_settings.cache_clear()
    fp32 = encode_texts(TEXTS, tiny)
    monkeypatch.setenv("EMBEDDING_PRECISION", "bf16")
    get_settings.cache_clear()
    bf16 = encode_texts(TEXTS, tiny)
    assert (fp32 * bf16).sum(axis=1).min() >= 0.995


def test_texts_and_normalisation() -> None:
    assert example_text(text="a") == "a"
    assert example_text(prompt="p", response="r") == "p\nr"
    assert example_text(messages=[{"role": "user", "content": "hi"}]) == "user: hi"
    assert normalise_text("  Hello\u00a0 WORLD \n") == normalise_text("hello world")
    assert Path(resolve_model()).joinpath("model.safetensors").exists()  # packaged, offline


def _project(engine: Engine, lead: User, tmp_path: Path, texts: list[str]) -> int:
    project = create_project(engine, lead, "Emb", labels=["a", "b"])
    import_texts(engine, lead, tmp_path, "Emb", texts, ["a"] * len(texts), prefix="e")
    assert project.id is not None
    return project.id


def test_fingerprint_changes_with_the_data(engine: Engine, lead: User, tmp_path: Path) -> None:
    from curation.review.adjudication import exclude_example

    project_id = _project(engine, lead, tmp_path, ["one", "two", "three"])
    before = load_items(engine, lead, project_id)
    assert len(before) == 3 and load_items(engine, lead, project_id).fingerprint == before.fingerprint
    exclude_example(engine, lead, before.ids[0], "off_task")
    after = load_items(engine, lead, project_id)
    assert len(after) == 2 and after.fingerprint != before.fingerprint


def test_loading_items_needs_a_lead(engine: Engine, lead: User, annotator: User, tmp_path: Path) -> None:
    """The items carry final labels: an annotator reads none of them (blind review)."""
    from curation.errors import PermissionDenied

    project_id = _project(engine, lead, tmp_path, ["one", "two"])
    with pytest.raises(PermissionDenied, match="is annotator"):
        load_items(engine, annotator, project_id)


def test_job_runs_and_reports(engine: Engine, lead: User, tmp_path: Path, tiny: str) -> None:
    project_id = _project(engine, lead, tmp_path, ["one", "two", "three"])
    state = run_job(engine, project_id, tiny, job_path(project_id))
    assert (state["status"], state["done"], state["total"], state["encoded"]) == (DONE, 3, 3, 3)
    assert read_job(project_id)["status"] == DONE
    # A "running" job whose process is gone reads as failed.
    write_job(job_path(project_id), {**state, "status": RUNNING, "pid": 2**22 + 12345})
    assert read_job(project_id)["status"] == FAILED


def test_background_job_survives_its_parent(engine: Engine, lead: User, tmp_path: Path, tiny: str) -> None:
    project_id = _project(engine, lead, tmp_path, ["alpha", "beta", "gamma", "delta"])
    state = start_job(project_id, tiny)
    assert state["status"] == RUNNING
    assert start_job(project_id, tiny)["pid"] == state["pid"]  # not started twice
    deadline = time.time() + 120
    while (job := read_job(project_id)) and job["status"] == RUNNING and time.time() < deadline:
        time.sleep(0.5)
    try:
        os.waitpid(state["pid"], 0)
    except ChildProcessError:
        pass
    assert job is not None and job["status"] == DONE, job_path(project_id).with_suffix(".log").read_text()
    assert (job["done"], job["total"]) == (4, 4)
    assert embed_texts(["alpha", "beta", "gamma", "delta"], tiny).encoded == 0


@pytest.mark.slow
def test_packaged_minilm(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real all-MiniLM-L6-v2 from the PyPI package: similar texts are close, bf16 ~ fp32."""

    texts = ["My card still hasn't arrived", "The card I ordered has not come yet", "How do I change my PIN?"]
    vectors = embed_texts(texts).vectors
    assert vectors.shape == (3, 384)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    monkeypatch.setenv("EMBEDDING_PRECISION", "fp32")
    get_settings.cache_clear()
    fp32 = encode_texts(texts)
    assert (fp32 * vectors).sum(axis=1).min() >= 0.995


def test_digest_ending_in_nul_bytes_round_trips(tiny: str) -> None:
    """A SHA-256 that ends in 0x00 (1 text in 256) must still be found in the cache."""
    import hashlib

    text = next(f"t{i}" for i in range(10_000) if hashlib.sha256(f"t{i}".encode()).digest()[-1] == 0)
    cache = EmbeddingCache(tiny)
    from curation.embeddings.encode import text_hash

    cache.add([text_hash(text)], np.ones((1, 32), dtype=np.float32))
    assert EmbeddingCache(tiny).lookup([text_hash(text)])[0].tolist() == [True]


@pytest.mark.parametrize("database_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)
def test_load_items_reads_each_kind_of_example(engine: Engine, lead: User) -> None:
    """Plain text, prompt and response, chat turns (stored JSON), and no text at all, in id order."""
    import hashlib

    from curation.db import write_session
    from curation.models import Example, ExampleStatus, TaskType

    project = create_project(engine, lead, "Kinds", task_type=TaskType.generation)
    rows = [dict(text="plain"), dict(prompt="p", response="r"),
            dict(messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]),
            dict(text=None), dict(text="gone", status=ExampleStatus.excluded)]
    with write_session(engine) as session:
        for i, row in enumerate(rows):
            session.add(Example(project_id=project.id, external_id=f"k{i}", final_label="x" if i == 0 else None,
                                content_hash=hashlib.sha256(str(i).encode()).hexdigest(), **row))
    items = load_items(engine, lead, project.id)
    assert items.texts == ["plain", "p\nr", "user: hi\nassistant: yo", ""]
    assert items.external_ids == ["k0", "k1", "k2", "k3"] and items.ids == sorted(items.ids)
    assert items.labels == ["x", None, None, None] and items.statuses == ["new"] * 4
    assert load_items(engine, lead, project.id, include_excluded=True).texts[-1] == "gone"


# --------------------------------------------------------------------------- the ONNX paths (onnx_runtime.py)


def _backend(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("EMBEDDING_BACKEND", name)
    get_settings.cache_clear()


def _cls_pooled(folder: Path, tiny: str) -> str:
    """The tiny model with CLS pooling: a layout the ONNX path does not export."""
    from sentence_transformers import SentenceTransformer, models

    source = SentenceTransformer(tiny, device="cpu")
    out = folder / "tiny-cls"
    SentenceTransformer(modules=[source[0], models.Pooling(32, "cls")], device="cpu").save(str(out))
    return str(out)


@pytest.mark.slow
def test_onnx_paths_on_packaged_minilm(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default on CPU (ONNX fp32): exported and checked once, the torch vectors to 1e-4, the same
    cache; int8 (opt-in): within the 0.99 cosine bar, under its own cache key."""
    from curation.embeddings import onnx_runtime
    from curation.embeddings.encode import base_model_key, embedding_backend

    texts = ["My card still hasn't arrived", "The card I ordered has not come yet", "How do I change my PIN?",
             "Why was I charged a fee for a transfer?", "I want my money back for this purchase", "refund"]
    monkeypatch.setenv("EMBEDDING_PRECISION", "fp32")
    _backend(monkeypatch, "torch")
    torch_key = model_key()
    fp32 = encode_texts(texts)
    _backend(monkeypatch, "auto")
    assert embedding_backend() == "onnx" and onnx_runtime.read_check(base_model_key(), "fp32") is None
    first = embed_texts(texts)
    check = onnx_runtime.read_check(base_model_key(), "fp32")
    assert check is not None and check["usable"] is True and check["texts"] == len(texts)
    assert check["min_cosine"] >= 0.9999 and model_key() == torch_key
    assert np.allclose(first.vectors, fp32, atol=1e-4)
    assert embed_texts(texts).cached == len(texts)

    _backend(monkeypatch, "onnx-int8")
    assert model_key() == f"{torch_key}-int8" and EmbeddingCache().root.name == f"{torch_key}-int8"
    int8 = embed_texts(texts)
    assert int8.encoded == len(texts)  # fp32 and int8 vectors never share a cache
    check = onnx_runtime.read_check(base_model_key(), "int8")
    assert check is not None and check["usable"] is True and check["mean_cosine"] >= onnx_runtime.MIN_MEAN_COSINE
    cosine = (int8.vectors * fp32).sum(axis=1)
    assert cosine.mean() >= 0.99 and cosine.min() >= 0.97
    assert np.allclose(np.linalg.norm(int8.vectors, axis=1), 1, atol=1e-5)
    assert int8.vectors[0] @ int8.vectors[1] > int8.vectors[0] @ int8.vectors[2] + 0.2
    again = embed_texts(texts)
    assert (again.encoded, again.cached) == (0, len(texts)) and np.array_equal(again.vectors, int8.vectors)


def test_a_model_onnx_cannot_export_stays_on_torch(tiny: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from curation.embeddings import onnx_runtime
    from curation.embeddings.encode import base_model_key, embedding_backend

    cls = _cls_pooled(tmp_path, tiny)
    _backend(monkeypatch, "torch")
    reference = encode_texts(TEXTS, cls)
    _backend(monkeypatch, "onnx-int8")
    assert embedding_backend(cls) == "onnx-int8"  # not checked yet
    result = embed_texts(TEXTS, cls)
    check = onnx_runtime.read_check(base_model_key(cls), "int8")
    assert check == {"usable": False, "reason": "pooling cls (only mean pooling over every token is exported)"}
    assert embedding_backend(cls) == "torch" and model_key(cls) == base_model_key(cls)
    assert np.allclose(result.vectors, reference, atol=1e-5)
    # the vectors went to the torch key's cache, none to the int8 one
    assert len(EmbeddingCache(cls)) == 3
    assert not (EmbeddingCache(cls).root.parent / f"{base_model_key(cls)}-int8").exists()


def test_a_model_under_the_cosine_bar_stays_on_torch(tiny: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiny model exports, but its check fails when the bar is set above any cosine: the check
    keeps its figures and the model is encoded by torch from then on."""
    from curation.embeddings import onnx_runtime
    from curation.embeddings.encode import base_model_key, embedding_backend

    _backend(monkeypatch, "torch")
    reference = encode_texts(TEXTS, tiny)
    _backend(monkeypatch, "auto")
    monkeypatch.setattr(onnx_runtime, "MIN_MEAN_COSINE", 1.01)
    result = embed_texts(TEXTS, tiny)
    check = onnx_runtime.read_check(base_model_key(tiny), "fp32")
    assert check is not None and check["usable"] is False and check["texts"] == 3  # the distinct texts missed
    assert 0.999 < check["mean_cosine"] <= 1.0001 and check["min_cosine"] <= check["mean_cosine"]
    assert check["reason"] == "mean cosine to fp32 under 1.01"
    assert embedding_backend(tiny) == "torch"
    assert np.allclose(result.vectors, reference, atol=1e-5)


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_onnx_vectors_of_the_tiny_model(tiny: str, monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    """Once prepared, the ONNX paths give unit vectors close to torch's (fp32: equal), the same for a
    text whatever its batch, and `encode_texts` reports progress over every text."""
    from curation.embeddings import onnx_runtime
    from curation.embeddings.encode import base_model_key

    variant = {"onnx": "fp32", "onnx-int8": "int8"}[backend]
    _backend(monkeypatch, "torch")
    reference = encode_texts(TEXTS, tiny)
    _backend(monkeypatch, backend)
    monkeypatch.setattr(onnx_runtime, "MIN_MEAN_COSINE", 0.0)  # the check's bar is tested above
    progress: list[tuple[int, int]] = []
    vectors = encode_texts(TEXTS, tiny, batch_size=3, progress=lambda d, t: progress.append((d, t)))
    assert onnx_runtime.read_check(base_model_key(tiny), variant)["usable"] is True  # type: ignore[index]
    assert onnx_runtime.model_path(base_model_key(tiny), variant).exists()
    assert vectors.shape == (4, 32) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert np.allclose(vectors[0], vectors[3], atol=1e-6)  # same text, different batch
    assert (vectors * reference).sum(axis=1).min() > (0.99999 if variant == "fp32" else 0.9)
    assert progress == [(3, 4), (4, 4)]
