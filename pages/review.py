"""Review (everyone who labels): the next item of the queue, blind to other people's labels, with the
guidelines beside it. Keys: digits give the label (or the 1-5 rating), S skips, B goes back to change
an earlier label, N returns to the queue."""


import streamlit as st

from curation.errors import CurationError
from curation.models import TaskType
from curation.review.annotate import (
    FLAGS,
    ReviewItem,
    get_review_item,
    original_response,
    previous_annotation,
    submit_annotation,
    update_annotation,
)
from curation.review.queue import next_item, progress, return_skipped, skip_item
from curation.review.rules import RATING_SCALE
from ui.keyboard import BACK, NEXT, SKIP, enable_shortcuts_on_checkboxes, label_key
from ui.links import link_caption, requested_id, show_in_url
from ui.page import open_project_page
from ui.session import flash, show_flash, switch_project
from ui.widgets import escape_markdown, show_error, show_example, show_word_diff

user, engine, project = open_project_page("Review")
key = f"review.{project.id}"
EDITING = f"{key}.editing"  # example id of an earlier label being changed (None: the queue)
SEEN = f"{key}.seen_version"  # {annotation id: row version shown}: a stale edit is refused, never overwritten
show_flash()
mine = progress(engine, user, project.id)
total = mine.done + mine.remaining
st.progress(mine.done / total if total else 1.0,
            text=f"{mine.done} done · {mine.remaining} remaining"
            + (f" · {mine.skipped} skipped" if mine.skipped else ""))


def suggestion_text(suggestion) -> str:  # type: ignore[no-untyped-def]
    """One suggestion or source vote as plain text: source, label, score when given."""
    score = f" (score {suggestion.score:.2f})" if suggestion.score is not None else ""
    kind = " (vote)" if suggestion.kind == "vote" else ""
    return f"{suggestion.source}{kind}: {suggestion.label}{score}"


def revealed_after_choice(example_id: int) -> str:
    """With the `after_choice` setting: what the sources said, once the annotator has chosen."""
    if project.suggestion_display != "after_choice":
        return ""
    shown = get_review_item(engine, user, example_id).suggestions
    if not shown:
        return ""
    return escape_markdown(" Sources said: " + "; ".join(suggestion_text(s) for s in shown) + ".")


def go_back(before_id: int | None) -> None:
    earlier = previous_annotation(engine, user, project.id, before_id)
    if earlier is None:
        st.toast("No earlier label to go back to.")
        return
    st.session_state[EDITING] = earlier.example.id
    st.rerun()


asked = requested_id("review", "item")  # ?item=123: a link (or a reload) opens that item
if asked is not None:
    st.session_state[EDITING] = asked

item: ReviewItem | None
try:
    if st.session_state.get(EDITING) is not None:
        item = get_review_item(engine, user, st.session_state[EDITING])
    else:
        item = next_item(engine, user, project.id)
except CurationError as error:
    st.session_state.pop(EDITING, None)
    show_error(error)
    st.stop()

show_in_url("review", "item", item.example.id if item is not None else None)
if item is not None and item.example.project_id != project.id:
    st.info(f"Item #{item.example.id} belongs to another project: switching to it.")
    switch_project(item.example.project_id)
    st.session_state[f"review.{item.example.project_id}.editing"] = item.example.id
    st.rerun()
if item is None:
    st.success("Nothing left for you to label in this project. Thank you!")
    c1, c2 = st.columns(2)
    if c1.button("Back", shortcut=BACK, help="change your last label"):
        go_back(None)
    if mine.skipped and c2.button(f"Return {mine.skipped} skipped items to my queue"):
        return_skipped(engine, user, project.id)
        st.rerun()
    st.stop()

example = item.example
own = item.annotation
item_key = f"{key}.{example.id}"
if own is not None:
    st.session_state.setdefault(SEEN, {}).setdefault(own.id, own.row_version)

left, right = st.columns([3, 2], gap="large")
with left:
    if own is not None:
        st.info(f"Changing your earlier label on item #{example.id} (version {own.row_version}).")
    st.caption(escape_markdown(f"Item #{example.id} · {example.external_id}"))
    link_caption("item", example.id, "item")
    if user.role in ("lead", "admin") and own is None:  # issue 12: why the queue served this item
        from curation.embeddings.suggest import queue_reason

        st.caption(escape_markdown("Why this item: " + queue_reason(engine, user, example.id)))
    with st.container(border=True):
        show_example(example)
    if item.suggestions:  # issue 12: beside the item, nothing pre-selected (never on blind items)
        with st.container(border=True):
            st.caption("Suggestions from sources (nothing is chosen for you)")
            for suggestion in item.suggestions:
                st.text(suggestion_text(suggestion))

    edited = None
    if item.task_type is TaskType.generation:
        original = original_response(example)
        edited = st.text_area("Your response (edit the reply as it should be)",
                              own.response if own is not None and own.response is not None else original,
                              height=200, key=f"{item_key}.response")
        if edited != original:
            st.caption(escape_markdown("Your changes, word by word: [-removed-] {+added+}"))
            show_word_diff(original, edited)
        else:
            st.caption("Unchanged from the original response.")
    comment = st.text_input("Comment (optional)", own.comment if own is not None else "",
                            key=f"{item_key}.comment")
    flag_columns = st.columns(len(FLAGS))
    flags = [name for (name, title), column in zip(FLAGS.items(), flag_columns, strict=True)
             if column.checkbox(title, own is not None and name in own.flags, key=f"{item_key}.flag.{name}")]

    def save(label: str | None = None, rating: int | None = None) -> None:
        values = {"label": label, "rating": rating, "comment": comment, "flags": flags}
        if item.task_type is TaskType.generation:
            values["response"] = edited
        try:
            if own is None:
                submit_annotation(engine, user, example.id, **values)
                st.session_state.pop(EDITING, None)  # opened by a link: back to the queue after it
                flash(f"Saved item #{example.id}." + revealed_after_choice(example.id))
            else:
                seen = st.session_state.get(SEEN, {}).get(own.id, own.row_version)
                update_annotation(engine, user, own.id, seen, **values)
                st.session_state.get(SEEN, {}).pop(own.id, None)
                st.session_state.pop(EDITING, None)
                flash(f"Changed your label on item #{example.id}.")
        except CurationError as error:
            st.session_state.get(SEEN, {}).pop(own.id if own is not None else -1, None)
            show_error(error)
            return
        st.rerun()

    if item.task_type is TaskType.generation:
        st.markdown("**Rate the original response** (1 = needs a rewrite, 5 = send as is) and save")
        ratings = st.container(horizontal=True)
        for value in RATING_SCALE:
            current = own is not None and own.rating == value
            if ratings.button("★" * value, key=f"{item_key}.rate.{value}", shortcut=str(value),
                              type="primary" if current else "secondary"):
                save(rating=value)
    else:
        st.markdown("**Label**")
        buttons = st.container(horizontal=True)
        for index, label in enumerate(item.labels):
            current = own is not None and own.label == label
            if buttons.button(escape_markdown(label), key=f"{item_key}.label.{index}",
                              shortcut=label_key(index), type="primary" if current else "secondary"):
                save(label=label)

    nav = st.container(horizontal=True)
    if own is None:
        if nav.button("Skip", shortcut=SKIP, help="not offered to you again (you can return skipped items)"):
            try:
                skip_item(engine, user, example.id)
            except CurationError as error:
                show_error(error)
            else:
                st.rerun()
    else:
        if nav.button("Next item", shortcut=NEXT, help="back to the queue without changing this label"):
            st.session_state.pop(EDITING, None)
            st.rerun()
    if nav.button("Back", shortcut=BACK, help="change your previous label"):
        go_back(own.id if own is not None else None)

with right:
    st.markdown(f"**Guidelines** (version {item.guidelines_version})")
    with st.container(border=True, height=500):
        st.markdown(item.guidelines or "_No guidelines yet._")  # written by a lead; raw HTML stays off
enable_shortcuts_on_checkboxes()
