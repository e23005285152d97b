"""Helpers: a tokenizer for tiny models built from a config (a 2-layer BERT and a 2-layer Llama with a byte-level BPE
tokenizer trained on the spot) and approved dataset versions written straight into the tables."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from curation.data.projects import create_project
from curation.db import read_session, write_session
from curation.models import (
    DatasetVersion,
    DatasetVersionItem,
    Example,
    Project,
    TaskType,
    User,
    VersionStatus,
    utcnow,
)
from curation.review.annotate import submit_annotation
from curation.review.sources import store_source_labels
from curation.versions.hashing import item_hash, version_hash

WORDS = {
    "billing": ["invoice", "refund", "charge", "payment", "card", "bill", "money", "fee"],
    "shipping": ["parcel", "delivery", "late", "courier", "package", "address", "tracking", "box"],
}
FILLER = ["my", "the", "is", "please", "help", "with", "a", "need", "where", "why"]


def texts(label: str, n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.sample(WORDS[label], 3) + rng.sample(FILLER, 3)) for _ in range(n)]


def tokenizer_for_tests(folder: Path) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from training.data import CHATML

    corpus = [" ".join(v) for v in WORDS.values()] * 20 + [" ".join(FILLER)] * 20 + [
        "user assistant system answer question thanks hello reply " * 5]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<pad>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>",
                                   bos_token="<|im_start|>", eos_token="<|im_end|>")
    fast.chat_template = CHATML
    fast.save_pretrained(folder)
    return fast


def make_version(engine: Engine, lead: User, name: str, task: TaskType, rows: list[dict[str, Any]],
                 labels: list[str] = (), status: VersionStatus = VersionStatus.approved) -> int:
    """A dataset version with these items (each a dict with split and text/label or messages)."""
    project = create_project(engine, lead, name, task_type=task, labels=list(labels))
    items = []
    for i, row in enumerate(rows):
        item = DatasetVersionItem(version_id=0, external_id=f"e{i:04d}", split=row["split"], text=row.get("text"),
                                  messages=row.get("messages"), label=row.get("label"),
                                  source=row.get("source", "synthetic"), licence=row.get("licence", "CC0-1.0"),
                                  content_hash="")
        item.content_hash = item_hash(item)
        items.append(item)
    with write_session(engine) as session:
        version = DatasetVersion(project_id=project.id, number=1, status=status, created_by_id=lead.id,
                                 approved_by_id=lead.id if status == VersionStatus.approved else None,
                                 approved_at=utcnow() if status == VersionStatus.approved else None,
                                 content_hash=version_hash(items), item_count=len(items), task_type=task,
                                 labels=list(labels),
                                 stats={"sources": {"synthetic": len(items)}, "licences": {"CC0-1.0": len(items)},
                                        "agreement": {"krippendorff_alpha": 0.81}})
        session.add(version)
        session.flush()
        for item in items:
            item.version_id = version.id
            session.add(item)
        return version.id


def classification_rows(n_train: int = 40, n_eval: int = 12) -> list[dict[str, Any]]:
    rows = []
    for label_index, label in enumerate(WORDS):
        rows += [{"split": "train", "text": t, "label": label} for t in texts(label, n_train // 2, label_index)]
        rows += [{"split": "eval", "text": t, "label": label} for t in texts(label, n_eval // 2, 10 + label_index)]
    return rows


def generation_rows(n_train: int = 16, n_eval: int = 4) -> list[dict[str, Any]]:
    rows = []
    for i in range(n_train + n_eval):
        label = list(WORDS)[i % 2]
        rows.append({"split": "train" if i < n_train else "eval", "messages": [
            {"role": "user", "content": f"question {' '.join(WORDS[label][:2])} {i}"},
            {"role": "assistant", "content": f"answer {label} thanks"}]})
    return rows


def build_tiny_models(root: Path) -> dict[str, str]:
    """A 2-layer BERT and a 2-layer Llama saved under `root`, with a BPE tokenizer trained here."""
    import torch
    from transformers import BertConfig, BertModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    bert_dir, llama_dir = root / "bert", root / "llama"
    tok = tokenizer_for_tests(bert_dir)
    BertModel(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128)).save_pretrained(bert_dir)
    tokenizer_for_tests(llama_dir)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                 num_key_value_heads=2, intermediate_size=64, max_position_embeddings=256,
                                 bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                 pad_token_id=tok.pad_token_id, tie_word_embeddings=True)).save_pretrained(llama_dir)
    return {"bert": str(bert_dir), "llama": str(llama_dir)}


def make_test_set_version(engine: Engine, lead: User, project_id: int, rows: list[dict[str, Any]]) -> int:
    """An approved test-set version with these items (text/label or messages), written into the tables."""
    from curation.models import TestSet, TestSetItem, TestSetVersion

    items = []
    for i, row in enumerate(rows):
        item = TestSetItem(test_set_version_id=0, external_id=f"x{i:04d}", split="test", text=row.get("text"),
                           messages=row.get("messages"), label=row.get("label"), source="synthetic",
                           licence="CC0-1.0", content_hash="")
        item.content_hash = item_hash(item)
        items.append(item)
    with write_session(engine) as session:
        test_set = TestSet(project_id=project_id, name=f"test {utcnow().timestamp()}", created_by_id=lead.id)
        session.add(test_set)
        session.flush()
        version = TestSetVersion(test_set_id=test_set.id, project_id=project_id, number=1,
                                 content_hash=version_hash(items), item_count=len(items), approved_by_id=lead.id)
        session.add(version)
        session.flush()
        for item in items:
            item.test_set_version_id = version.id
            session.add(item)
        return version.id


def test_rows(n: int = 20) -> list[dict[str, Any]]:
    """Held-out classification items, not in any version (other seeds than classification_rows)."""
    rows = []
    for label_index, label in enumerate(WORDS):
        rows += [{"text": t, "label": label} for t in texts(label, n // 2, 50 + label_index)]
    return rows


def items_with_a_vendor(engine: Engine, lead: User, project_id: int) -> tuple[dict[str, int], dict[str, str], dict[str, str]]:
    """20 items of the version's project: a vendor votes on items 0-15 (wrong on 0 and 1), items 16-17
    carry nothing, items 18-19 have an expert label. (external id -> id, truth, vendor label)."""
    truth = {}
    labels = list(WORDS)
    for label_index, label in enumerate(labels):
        for j, text in enumerate(texts(label, 10, 30 + label_index)):
            truth[f"s{label_index * 10 + j:02d}|{text}"] = label
    ordered = sorted(truth)
    with write_session(engine) as session:
        for key in ordered:
            external, text = key.split("|")
            session.add(Example(project_id=project_id, external_id=external, text=text, content_hash=external))
    truth = {key.split("|")[0]: label for key, label in truth.items()}
    vendor = {e: (labels[1 - labels.index(truth[e])] if e in ("s00", "s01") else truth[e])
              for e in sorted(truth)[:16]}
    with write_session(engine) as session:
        store_source_labels(session, session.get(Project, project_id), "vendor", "vote",
                            [(e, label, None) for e, label in vendor.items()], None, utcnow())
    with read_session(engine) as session:
        ids = dict(session.execute(select(Example.external_id, Example.id)
                                   .where(Example.project_id == project_id)).all())
    for e in ("s18", "s19"):
        submit_annotation(engine, lead, ids[e], label=truth[e])
    return ids, truth, vendor
