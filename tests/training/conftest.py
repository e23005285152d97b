"""Fixtures of the training tests: tiny models built from a config (a 2-layer BERT and a 2-layer
Llama with a BPE tokenizer trained on the spot) and approved dataset versions."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from curation.models import TaskType, User
from tests.training.helpers import WORDS, classification_rows, generation_rows, make_version, tokenizer_for_tests


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    import torch
    from transformers import BertConfig, BertModel, LlamaConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("tiny")
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


@pytest.fixture
def classification_version(engine: Engine, lead: User) -> int:
    return make_version(engine, lead, "Tickets", TaskType.classification, classification_rows(),
                        labels=list(WORDS))


@pytest.fixture
def generation_version(engine: Engine, lead: User) -> int:
    return make_version(engine, lead, "Replies", TaskType.generation, generation_rows())
