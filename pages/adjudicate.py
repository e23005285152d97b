"""Adjudication (leads): items whose labels disagree, most disputed first, with every label, its
annotator and comment. The lead sets the final label or response with a reason, and can relabel,
exclude or include any item. Other pages open an item here by setting `adjudicate.example_id`."""

from collections import Counter

import pandas as pd
import streamlit as st

from curation.errors import CurationError
from curation.models import ExampleStatus, QueueOrder, Role, TaskType
from curation.review.adjudication import (
    EXCLUSION_REASONS,
    adjudicate,
    adjudication_queue,
    example_detail,
    exclude_example,
    include_example,
)
from curation.review.annotate import FLAGS, original_response
from curation.review.queue import queue_stats, set_queue_order
from ui.keyboard import label_key
from ui.links import link_caption, requested_id, show_in_url
from ui.page import open_project_page
from ui.session import flash, show_flash, switch_project
from ui.widgets import escape_markdown, show_error, show_example, show_history, show_word_diff

REQUEST = "adjudicate.example_id"  # the contract with other pages: open this example first
OPEN = "adjudicate.open"  # the example on screen

user, engine, project = open_project_page("Adjudication", Role.lead, Role.admin)
key = f"adjudicate.{project.id}"
show_flash()
if REQUEST in st.session_state:
    st.session_state[OPEN] = int(st.session_state.pop(REQUEST))
asked = requested_id("adjudicate", "item")  # ?item=123: a link (or a reload) opens that item
if asked is not None:
    st.session_state[OPEN] = asked

queue = adjudication_queue(engine, user, project.id)
stats = queue_stats(engine, user, project.id)
metrics = st.columns(4)
metrics[0].metric("Disputed", len(queue))
metrics[1].metric("Need labels", stats["needs_labels"])
metrics[2].metric("Labelled", stats["labelled"])
metrics[3].metric("Excluded", stats["excluded"])

with st.expander("Annotators' queue order"):
    orders = [order.value for order in QueueOrder]
    names = {"unlabelled_first": "Unlabelled items first", "suspected_first": "Suspected problems first",
             # issue 12: active-learning orders (they read the probe's suggestions: run `suggest` first)
             "lowest_margin": "Least certain model suggestions first",
             "disagreement": "Source vs model disagreements first",
             "uncovered_clusters": "Least reviewed clusters first"}
    order = st.radio("Hand out first", orders, index=orders.index(stats["queue_order"]),
                     format_func=names.__getitem__, horizontal=True, key=f"{key}.order")
    if order != stats["queue_order"]:
        set_queue_order(engine, user, project.id, order)
        flash(f"The queue now hands out {names[order].lower()}.")
        st.rerun()

if queue:
    sent_back = sum(item.rereview for item in queue)
    if sent_back:
        st.caption(f"{len(queue) - sent_back} disagreements first, then {sent_back} items sent back as suspected "
                   "label errors, highest suspicion first (from Label issues).")
    table = pd.DataFrame([{
        "#": item.example_id,
        "id": item.external_id,
        "labels": item.labels,
        "answers": " | ".join(f"{answer[:60]} ×{n}" for answer, n in item.votes.items()),
        "disagreement": round(item.disagreement, 2),
        "suspicion": round(item.suspicion, 3) if item.suspicion is not None else None,
        "was": item.evidence.get("earlier_label"),
        "proposed": item.evidence.get("proposed_label"),
    } for item in queue[:500]])
    st.dataframe(table, hide_index=True, width="stretch", height=min(38 + 35 * len(table), 250))
else:
    st.success("Nothing waits for a lead's decision in this project.")


def open_example(example_id: int | None) -> None:
    st.session_state[OPEN] = example_id


by_id = {item.example_id: item for item in queue}
pick_options = list(by_id)[:500]
c1, c2 = st.columns([3, 1])
current = st.session_state.get(OPEN)
if current is None and queue:
    current = queue[0].example_id
if pick_options:
    c1.selectbox("Disputed item", pick_options, index=pick_options.index(current) if current in by_id else 0,
                 format_func=lambda i: (f"#{i} · {by_id[i].external_id} · sent back ({by_id[i].suspicion:.2f})"
                                        if by_id[i].rereview else
                                        f"#{i} · {by_id[i].external_id} · {by_id[i].distinct} answers"),
                 key=f"{key}.pick.{current}",
                 on_change=lambda: open_example(st.session_state[f"{key}.pick.{current}"]))
c2.number_input("Open any item #", min_value=0, value=0, step=1, key=f"{key}.any",
                help="relabel or exclude an item that is not disputed",
                on_change=lambda: open_example(int(st.session_state[f"{key}.any"]) or None))
if current is None:
    st.stop()

try:
    detail = example_detail(engine, user, int(current))
except CurationError as error:
    show_error(error)
    st.session_state.pop(OPEN, None)
    st.stop()
example = detail.example
show_in_url("adjudicate", "item", example.id)
if example.project_id != project.id:
    st.info(f"Item #{example.id} belongs to another project: switching to it.")
    switch_project(example.project_id)
    st.session_state[OPEN] = example.id
    st.rerun()

generation = TaskType(detail.project.task_type) is TaskType.generation
item_key = f"{key}.{example.id}"
with st.container(border=True):
    st.subheader(f"Item #{example.id}")
    link_caption("item", example.id, "item")
    st.text(f"id: {example.external_id} · status: {example.status}"
            + (f" · final label: {example.final_label}" if example.final_label else ""))
    show_example(example)
    if example.status == ExampleStatus.excluded:
        st.warning("Excluded by a lead. Reason:")
        st.text(example.exclusion_reason or "")

st.markdown(f"**Labels** ({len(detail.annotations)} of k = {detail.project.overlap_k})")
if detail.annotations:
    st.dataframe(pd.DataFrame([{
        "annotator": view.annotator,
        ("rating" if generation else "label"): (view.annotation.rating if generation
                                                else view.annotation.label),
        "comment": view.annotation.comment,
        "flags": ", ".join(FLAGS.get(flag, flag) for flag in view.annotation.flags),
        "at": view.annotation.updated_at,
    } for view in detail.annotations]), hide_index=True, width="stretch")
else:
    st.caption("No labels yet.")
if generation:
    for view in detail.annotations:
        with st.expander(f"{escape_markdown(view.annotator)}'s response (rating {view.annotation.rating})"):
            original = original_response(example)
            edited = view.annotation.response if view.annotation.response is not None else original
            st.caption(escape_markdown("Changes to the original, word by word: [-removed-] {+added+}"))
            show_word_diff(original, edited)
if detail.adjudications:
    st.markdown("**Lead decisions**")
    st.dataframe(pd.DataFrame([{"lead": name, "final": a.final_label if not generation else a.final_response,
                                "reason": a.reason, "at": a.created_at} for a, name in detail.adjudications]),
                 hide_index=True, width="stretch")

evidence = by_id[example.id].evidence if example.id in by_id else {}
if evidence:
    with st.container(border=True):
        st.markdown("**Sent back as a suspected label error**")
        st.text(f"label before: {evidence.get('earlier_label')} · proposed: {evidence.get('proposed_label')} "
                f"(confidence {float(evidence.get('confidence') or 0):.2f}) · suspicion "
                f"{float(evidence.get('score') or 0):.2f}")
        if evidence.get("classifier"):
            st.text("classifier (out of sample): " + ", ".join(
                f"{label} {p:.2f}" for label, p in evidence["classifier"].items()))
        if evidence.get("neighbours_disagreeing"):
            st.text("nearest items with another label: " + ", ".join(
                f"{item_id} ({label})" for item_id, label in evidence["neighbours_disagreeing"]))

st.markdown("**Decision**")
reason = st.text_input("Reason (required; goes into the audit trail)", key=f"{item_key}.reason")


def decided(message: str) -> None:
    flash(message)
    st.session_state.pop(OPEN, None)
    st.rerun()


if generation:
    votes = Counter(view.annotation.response for view in detail.annotations
                    if view.annotation.response is not None)
    proposal = example.final_response or (votes.most_common(1)[0][0] if votes else original_response(example))
    final = st.text_area("Final response", proposal, height=200, key=f"{item_key}.final")
    if st.button("Set final response", type="primary", key=f"{item_key}.set"):
        try:
            adjudicate(engine, user, example.id, final_response=final, reason=reason)
            decided(f"Item #{example.id}: final response set.")
        except CurationError as error:
            show_error(error)
else:
    st.caption("Set the final label (keys 1-9):")
    buttons = st.container(horizontal=True)
    for index, label in enumerate(detail.project.labels):
        chosen = example.final_label == label
        if buttons.button(escape_markdown(label), key=f"{item_key}.label.{index}", shortcut=label_key(index),
                          type="primary" if chosen else "secondary"):
            try:
                adjudicate(engine, user, example.id, final_label=label, reason=reason)
                decided(f"Item #{example.id}: final label {label}.")
            except CurationError as error:
                show_error(error)

with st.expander("Exclude or include" if example.status != ExampleStatus.excluded else "Include again",
                 expanded=example.status == ExampleStatus.excluded):
    if example.status == ExampleStatus.excluded:
        if st.button("Include again", key=f"{item_key}.include"):
            try:
                include_example(engine, user, example.id, reason)
                decided(f"Item #{example.id} is included again.")
            except CurationError as error:
                show_error(error)
    else:
        category = st.selectbox("Why", list(EXCLUSION_REASONS), format_func=EXCLUSION_REASONS.__getitem__,
                                key=f"{item_key}.category")
        if st.button("Exclude item", key=f"{item_key}.exclude"):
            try:
                exclude_example(engine, user, example.id, category, reason)
                decided(f"Item #{example.id} is excluded ({EXCLUSION_REASONS[category].lower()}).")
            except CurationError as error:
                show_error(error)

show_history(engine, user, example.id)
