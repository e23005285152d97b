"""Preference (everyone who labels; leads also start rounds and read results): blind human comparison
of two generation systems. Annotators see a prompt and two responses, A and B, in an order fixed for
them, never which system wrote which, and choose with keys: A, B, T (tie), X (both bad)."""

import streamlit as st

from curation.errors import CurationError
from curation.evaluation import preference
from curation.models import Role, TaskType
from training import jobs
from training.preference_job import generation_state, refresh_model_card, start_round_in_background
from ui.page import open_project_page
from ui.preference import BOTH_BAD_KEY, FIRST_KEY, SECOND_KEY, TIE_KEY, result_view, show_pair
from ui.session import flash, show_flash
from ui.training import run_label
from ui.widgets import escape_markdown, show_error

user, engine, project = open_project_page("Preference")
key = f"preference.{project.id}"
show_flash()
if st.session_state.get(f"{key}.warning"):
    st.warning(escape_markdown(st.session_state.pop(f"{key}.warning")))
if project.task_type != TaskType.generation:
    st.info("Blind preference compares generated responses: this is a classification project.")
    st.stop()
leads = user.role in (Role.lead, Role.admin)
def judge_view() -> None:
    """The next blind pair of the chosen open round, and the four answers (buttons with keys)."""
    rounds = preference.open_rounds(engine, user, project.id)
    if not rounds:
        st.info("No preference round is open for judging in this project.")
        return
    left_by_round = {r: (left, total) for r, left, total in rounds}
    chosen = st.selectbox("Round", list(left_by_round), key=f"{key}.judge_round",
                          format_func=lambda r: f"Round {r} ({left_by_round[r][0]} of {left_by_round[r][1]} "
                                                "prompts left for you)")
    try:
        pair = preference.next_pair(engine, user, chosen)
    except CurationError as error:
        show_error(error)
        return
    if pair is None:
        st.success("Nothing left for you to judge in this round. Thank you!")
        return
    st.progress(pair.judged / pair.total if pair.total else 1.0, text=f"{pair.judged} of {pair.total} prompts judged")
    show_pair(pair)

    def choose(choice: str) -> None:
        try:
            preference.judge(engine, user, pair.item_id, choice)
        except CurationError as error:
            st.session_state[f"{key}.warning"] = str(error)

    c1, c2, c3, c4 = st.columns(4)
    c1.button("A is better", shortcut=FIRST_KEY, on_click=choose, args=("first",), key=f"{key}.first",
              use_container_width=True)
    c2.button("B is better", shortcut=SECOND_KEY, on_click=choose, args=("second",), key=f"{key}.second",
              use_container_width=True)
    c3.button("Tie", shortcut=TIE_KEY, on_click=choose, args=("tie",), key=f"{key}.tie", use_container_width=True)
    c4.button("Both bad", shortcut=BOTH_BAD_KEY, on_click=choose, args=("both_bad",), key=f"{key}.both_bad",
              use_container_width=True)


# Leads see the rounds first; their Judge tab leases nothing until they choose to judge (a lease held
# by someone only looking would keep a prompt's slot from the annotators for half an hour).
tabs = st.tabs(["Rounds", "Judge"] if leads else ["Judge"])
with tabs[-1]:
    if not leads or st.toggle("Judge pairs myself", key=f"{key}.lead_judges",
                              help="You have seen which systems a round compares: annotators' judgements are "
                                   "blinder than yours."):
        judge_view()

if leads:
    with tabs[0]:
        finished = [r for r in jobs.list_runs(engine, project.id) if str(r.status) == "succeeded"]
        by_id = {r.id: r for r in finished}
        with st.expander("Start a round", expanded=not preference.list_rounds(engine, user, project.id)):
            if not finished:
                st.info("A round compares finished runs: train one on the Train page first.")
            else:
                with st.form(f"{key}.start"):
                    run_a = st.selectbox("System A: the adapter of run", list(by_id),
                                         format_func=lambda i: run_label(by_id[i]))
                    against = st.selectbox("System B", [None, *by_id],
                                           format_func=lambda i: "the base model" if i is None else
                                           f"the adapter of {run_label(by_id[i])}")
                    c1, c2, c3 = st.columns(3)
                    size = c1.number_input("Prompts", 1, preference.MAX_PROMPTS, 20)
                    k = c2.number_input("Judgements per prompt", 1, 20, 2)
                    seed = c3.number_input("Seed", 0, 2**31 - 1, 0)
                    submitted = st.form_submit_button("Start round", type="primary")
                if submitted:
                    try:
                        started = start_round_in_background(engine, user, int(run_a), other_run_id=against,
                                                            size=int(size), overlap_k=int(k), seed=int(seed))
                    except CurationError as error:
                        show_error(error)
                    else:
                        flash(f"Round {started.id} started: its responses are being generated in the background.")
                        st.rerun()
        summaries = preference.list_rounds(engine, user, project.id)
        if summaries:
            by_round = {r.id: r for r in summaries}
            shown = st.selectbox("Round", list(by_round), key=f"{key}.round", format_func=lambda r: (
                f"Round {r}: {by_round[r].system_a} vs {by_round[r].system_b} · {by_round[r].status} · "
                f"{by_round[r].judgements}/{by_round[r].size * by_round[r].overlap_k} judgements"))
            summary = by_round[shown]
            if summary.status == "generating":

                @st.fragment(run_every=2)
                def _generation() -> None:
                    state = generation_state(shown) or {}
                    done, total = int(state.get("done") or 0), int(state.get("total") or summary.size)
                    st.progress(done / total if total else 0.0,
                                text=escape_markdown(f"Generating responses: {done} of {total} pairs "
                                                     f"({state.get('note') or 'starting'})"))
                    if state.get("status") in ("done", "failed"):
                        st.rerun()

                _generation()
            elif summary.status == "failed":
                st.error(escape_markdown(f"Generation failed: {summary.error}"))
            else:
                result_view(preference.round_result(engine, user, shown))
                refresh_model_card(engine, summary.run_id)  # the run's model card carries the result
