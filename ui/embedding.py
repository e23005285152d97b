"""Shared by the embedding pages (duplicates, diversity, label issues, leakage): the project's current
examples and their vectors, embedding small gaps inline and large ones in the background job, with a
progress bar that polls the job file (so it survives a page reload)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import streamlit as st

from curation.access.roles import LEADS, require_role
from curation.embeddings.encode import (
    EmbeddingCache,
    ProjectItems,
    embed_texts,
    model_key,
    project_stamp,
    read_project_items,
    text_hash,
)
from curation.embeddings.jobs import DONE, FAILED, RUNNING, read_job, start_job
from curation.models import User
from curation.settings import get_settings
from ui.session import get_engine

INLINE_MAX = 256  # missing texts embedded within the page run; more go to the background job


@st.cache_resource(show_spinner=False)
def _cache(key: str, data_dir: str) -> EmbeddingCache:
    return EmbeddingCache()  # one per model and data folder: its shards are read once per process


def current_items(user: User, project_id: int) -> ProjectItems:
    """The project's items for an embedding page (the role is checked on every call), read again only
    when its stamp changed (reading 100k rows on every render of the four embedding pages took seconds)."""
    require_role(user, *LEADS)
    engine = get_engine()
    return _items(project_id, project_stamp(engine, project_id), str(engine.url))


@st.cache_resource(show_spinner=False, max_entries=4)
def _items(project_id: int, stamp: str, database: str) -> ProjectItems:
    return read_project_items(get_engine(), project_id)  # stamp and database only key the cache


@st.cache_resource(show_spinner=False, max_entries=4)
def _hashes(fingerprint: str, _texts: tuple[str, ...] | list[str]) -> list[bytes]:
    return [text_hash(t) for t in _texts]  # the same fingerprint means the same texts


class _Incomplete(Exception):
    """Some texts have no vector yet (never cached: st.cache_resource does not keep exceptions)."""


@st.cache_resource(show_spinner=False, max_entries=4)
def _complete_vectors(fingerprint: str, key: str, data_dir: str, _hashes: list[bytes]) -> np.ndarray:
    # A cache object of its own, dropped on return: the process keeps these vectors, not the shards too
    found, vectors = EmbeddingCache().lookup(_hashes)
    if not found.all():
        raise _Incomplete
    vectors.setflags(write=False)  # shared by every session that shows this data
    return vectors


def vectors_or_stop(project_id: int, items: ProjectItems) -> np.ndarray:
    """Unit vectors of `items`, or a progress/start panel and st.stop() while they are not all embedded.
    Vectors of fully embedded data are kept per (fingerprint, model): looking 100k texts up in the
    cache again cost ~0.5 s on every render of the four embedding pages."""
    key, data_dir = model_key(), str(get_settings().data_dir)
    hashes = _hashes(items.fingerprint, items.texts)
    try:
        return _complete_vectors(items.fingerprint, key, data_dir, hashes)
    except _Incomplete:
        pass
    cache = _cache(key, data_dir)
    found, vectors = cache.lookup(hashes)
    missing = int((~found).sum())
    job = read_job(project_id)
    if missing == 0:
        return vectors  # completed since the check above
    if job and job.get("status") == RUNNING:
        st.info(
            f"{missing:,} of {len(items):,} texts are not embedded yet; a background job is embedding them. "
            "Results appear when it finishes (you may leave or reload this page)."
        )
        _job_progress(project_id)
        st.stop()
    if missing <= INLINE_MAX:
        bar = st.progress(0.0, text=f"Embedding {missing} new or changed texts...")
        vectors = embed_texts(
            items.texts,
            cache=cache,
            progress=lambda done, total: bar.progress(
                done / max(total, 1), text=f"Embedding: {done}/{total}"
            ),
        ).vectors
        bar.empty()
        return vectors
    if job and job.get("status") == FAILED:
        st.error(f"The last embedding job failed: {job.get('error')}")
    st.warning(
        f"{missing:,} of {len(items):,} texts have no embedding yet (new or changed since the last run). "
        "Embedding them takes a while on CPU; it runs in the background."
    )
    if st.button("Embed in the background", type="primary", key=f"embed.start.{project_id}"):
        start_job(project_id)
        time.sleep(0.2)
        st.rerun()
    st.stop()
    raise AssertionError("unreachable")


@st.fragment(run_every=1.0)
def _job_progress(project_id: int) -> None:
    job = read_job(project_id) or {}
    done, total = int(job.get("done") or 0), int(job.get("total") or 0)
    st.progress(done / total if total else 0.0, text=f"Embedding: {done:,}/{total:,} texts")
    if job.get("status") in (DONE, FAILED):
        st.rerun()


def wait_for_task(state: dict[str, Any], poll: Callable[[], dict[str, Any] | None], *, what: str,
                  waiting: str) -> None:
    """Return when the background task whose state is `state` is done; otherwise stop the page after its
    error (`what` failed) or after `waiting` and a progress bar that `poll()` (the task's state, never
    starting it) refreshes each second, rerunning the page when the task ends."""
    if state["status"] == "failed":
        st.error(f"{what} failed: {state.get('error')}. It is tried again when you reopen the page in a minute.")
        st.stop()
    if state["status"] == "done":
        return

    st.info(waiting, icon="🔄")

    @st.fragment(run_every=1.0)
    def _wait() -> None:
        now = poll() or {}
        if now.get("status") != "running":
            st.rerun()
        total, done = int(now.get("total") or 0), int(now.get("done") or 0)
        st.progress(done / total if total else 0.0,
                    text=f"{now.get('note') or 'starting'}: {done}/{total}" if total else "starting")

    _wait()
    st.stop()


def freshness(items: ProjectItems) -> None:
    """Say which data the results below come from (they are recomputed whenever it changes)."""
    st.caption(
        f"Computed from the current data: {len(items):,} examples (excluded ones left out), "
        f"data fingerprint {items.fingerprint}. Any import, label, exclusion or split change recomputes."
    )
