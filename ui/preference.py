"""Views of blind preference rounds (curation/evaluation/preference.py): the judging screen that
annotators see (no system names), a round's result for leads, and the line on a run's record."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from curation.evaluation.preference import BlindPair
from curation.models import TrainingRun
from ui.widgets import escape_markdown

# Keys of the judging screen (C and R are Streamlit's own).
FIRST_KEY, SECOND_KEY, TIE_KEY, BOTH_BAD_KEY = "A", "B", "T", "X"


def win_rate_line(result: dict[str, Any]) -> str:
    """'run #3 adapter vs base model: win rate 0.667 [0.500, 0.833] on 3 prompts (6 judgements), ties
    0.17, both bad 0.17, alpha 0.40: no detectable preference' (plain text; escape before markdown)."""
    rate = result.get("win_rate")
    head = f"{result['system_a']} vs {result['system_b']}"
    if not rate:
        return f"{head}: no judgements yet"
    alpha = "undefined" if result.get("alpha") is None else f"{result['alpha']:.2f}"
    return (f"{head}: win rate {rate['value']:.3f} [{rate['low']:.3f}, {rate['high']:.3f}] on {result['prompts']} "
            f"prompts ({result['judgements']} judgements), ties {result['tie_rate']:.2f}, both bad "
            f"{result['both_bad_rate']:.2f}, Krippendorff's alpha {alpha}: {result['verdict']}")


def run_preference_view(run: TrainingRun) -> None:
    """The run's blind human preference result, when a round has judgements (metrics["preference"])."""
    record = (run.metrics or {}).get("preference")
    if record:
        st.info(escape_markdown(f"Blind human preference (round {record['round_id']}, ties count half): "
                                + win_rate_line(record)))


def show_pair(pair: BlindPair) -> None:
    """The prompt and the two responses, literal text only, labelled A and B by position."""
    for message in pair.messages:
        with st.chat_message(message["role"] if message["role"] in ("user", "assistant") else "ai"):
            st.text(message["content"])
    left, right = st.columns(2)
    with left, st.container(border=True):
        st.caption("Response A")
        st.text(pair.first)
    with right, st.container(border=True):
        st.caption("Response B")
        st.text(pair.second)


def result_view(result: dict[str, Any]) -> None:
    """A round's result for leads: headline numbers and the per-prompt table."""
    rate = result.get("win_rate")
    st.caption(escape_markdown(f"System A: {result['system_a']} · System B: {result['system_b']} · "
                               f"{result['judgements']} of {result['size'] * result['overlap_k']} judgements"))
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Win rate", "—" if not rate else f"{rate['value']:.3f}",
              help="share of judgements where system A was better; a tie or 'both bad' counts half")
    c2.metric("95% interval", "—" if not rate else f"[{rate['low']:.3f}, {rate['high']:.3f}]")
    c3.metric("Ties / both bad", "—" if result.get("tie_rate") is None else
              f"{result['tie_rate']:.2f} / {result['both_bad_rate']:.2f}")
    c4.metric("Krippendorff's alpha", "—" if result.get("alpha") is None else f"{result['alpha']:.3f}")
    st.caption(escape_markdown(win_rate_line(result) + f". Prompts from {result['prompt_source']}."))
    st.dataframe(pd.DataFrame([{
        "#": row["position"], "item": row["external_id"],
        "prompt": row["messages"][-1]["content"] if row["messages"] else "",
        "system A better": row["a"], "system B better": row["b"], "tie": row["tie"], "both bad": row["both_bad"],
        "A's score": row["score"], "system A's response": row["response_a"],
        "system B's response": row["response_b"],
        "reference": row["reference"],
    } for row in result["per_prompt"]]), hide_index=True)
