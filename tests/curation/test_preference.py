"""Blind human preference rounds: exact win rates on hand-made judgements, blindness, leases, roles,
the run's record."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from curation.access.accounts import create_user
from curation.db import read_session
from curation.errors import Conflict, InputError, PermissionDenied
from curation.evaluation import preference as pref
from curation.models import AuditEvent, PreferenceRound, Role, TrainingRun, User
from tests.conftest import BOTH_BACKENDS
from tests.curation.preference_helpers import RUN_METRICS, finished_run, generated_round, generation_project


@pytest.fixture
def second_annotator(engine: Engine, admin: User) -> User:
    return create_user(engine, admin, "bob", Role.annotator, "annotator-password")


@pytest.fixture
def run_id(engine: Engine, lead: User) -> int:
    return finished_run(engine, lead, generation_project(engine, lead))


# --------------------------------------------------------------------------- the statistics


def test_win_rate_counts_ties_and_both_bad_as_half() -> None:
    # prompt 1: A, A; prompt 2: B, tie; prompt 3: both bad, A -> (1 + 1 + 0 + .5 + .5 + 1) / 6
    rows = [(1, 10, "a"), (1, 11, "a"), (2, 10, "b"), (2, 11, "tie"), (3, 10, "both_bad"), (3, 11, "a")]
    result = pref.preference_result(rows)
    assert result["win_rate"]["value"] == pytest.approx(4 / 6)
    assert result["win_rate"]["low"] <= 4 / 6 <= result["win_rate"]["high"]
    assert (result["prompts"], result["judgements"]) == (3, 6)
    assert (result["wins"], result["losses"], result["ties"], result["both_bad"]) == (3, 1, 1, 1)
    assert result["tie_rate"] == pytest.approx(1 / 6) and result["both_bad_rate"] == pytest.approx(1 / 6)
    assert result["verdict"] == "no detectable preference"


def test_unanimous_wins_are_a_preference_with_perfect_agreement() -> None:
    rows = [(p, a, "a" if p < 8 else "b") for p in range(10) for a in (1, 2)]
    result = pref.preference_result(rows)
    assert result["win_rate"]["value"] == pytest.approx(0.8)
    assert result["alpha"] == pytest.approx(1.0)
    every_a = pref.preference_result([(p, a, "a") for p in range(10) for a in (1, 2)])
    assert every_a["win_rate"] == {"value": 1.0, "low": 1.0, "high": 1.0, "n": 10, "confidence": 0.95}
    assert every_a["verdict"] == "A preferred"
    assert every_a["alpha"] is None  # one category only: agreement is undefined, not perfect


def test_alpha_of_complete_disagreement_is_negative() -> None:
    rows = [(1, 1, "a"), (1, 2, "b"), (2, 1, "b"), (2, 2, "a")]
    result = pref.preference_result(rows)
    assert result["alpha"] is not None and result["alpha"] < 0
    assert result["win_rate"]["value"] == pytest.approx(0.5)


def test_no_judgements_and_unknown_verdicts() -> None:
    assert pref.preference_result([])["win_rate"] is None
    with pytest.raises(InputError):
        pref.preference_result([(1, 1, "first")])


# --------------------------------------------------------------------------- rounds


def test_start_round_draws_seeded_prompts_and_waits_for_generation(engine: Engine, lead: User, run_id: int) -> None:
    round_ = pref.start_round(engine, lead, run_id, size=4, overlap_k=2, seed=3)
    again = pref.start_round(engine, lead, run_id, size=4, overlap_k=2, seed=3)
    spec, spec_again = (pref.generation_spec(engine, lead, r.id) for r in (round_, again))
    assert round_.status == "generating" and round_.size == 4
    assert [i["messages"] for i in spec["items"]] == [i["messages"] for i in spec_again["items"]]
    assert all(i["messages"][-1]["role"] == "user" for i in spec["items"])  # the answer is not in the prompt
    assert spec["run_dir_b"] is None  # system B: the base model
    assert "eval split of dataset v1" in round_.prompt_source
    assert pref.next_pair(engine, lead, round_.id) is None  # nothing to judge while generating
    with pytest.raises(InputError):
        pref.store_responses(engine, lead, round_.id, {})
    with read_session(engine) as session:
        assert session.query(AuditEvent).filter_by(action="preference.start").count() == 2


def test_runs_on_different_test_sets_or_projects_are_refused(engine: Engine, lead: User, run_id: int) -> None:
    other_project = finished_run(engine, lead, generation_project(engine, lead, "Other"))
    with pytest.raises(Conflict, match="different projects"):
        pref.start_round(engine, lead, run_id, other_run_id=other_project)
    with pytest.raises(InputError):
        pref.start_round(engine, lead, run_id, other_run_id=run_id)
    with pytest.raises(InputError):
        pref.start_round(engine, lead, run_id, size=0)


def test_roles_are_enforced(engine: Engine, lead: User, annotator: User, run_id: int) -> None:
    with pytest.raises(PermissionDenied):
        pref.start_round(engine, annotator, run_id)
    round_id = generated_round(engine, lead, run_id)
    for call in (lambda: pref.round_result(engine, annotator, round_id),
                 lambda: pref.list_rounds(engine, annotator),
                 lambda: pref.generation_spec(engine, annotator, round_id),
                 lambda: pref.store_responses(engine, annotator, round_id, {})):
        with pytest.raises(PermissionDenied):
            call()
    assert pref.next_pair(engine, annotator, round_id) is not None  # annotators judge


def test_blind_view_has_no_system_names_and_a_fixed_order(engine: Engine, lead: User, annotator: User,
                                                         second_annotator: User, run_id: int) -> None:
    round_id = generated_round(engine, lead, run_id, size=6, overlap_k=2)
    pair = pref.next_pair(engine, annotator, round_id)
    assert pair is not None
    fields = {f.name for f in dataclasses.fields(pair)}
    assert fields == {"round_id", "item_id", "messages", "first", "second", "lease_until", "judged", "total"}
    shown = repr(pair).lower()
    for name in ("run #", "base model", "system", "adapter_path", "response_a", "response_b"):
        assert name not in shown
    assert {pair.first.split()[0], pair.second.split()[0]} == {"adapter", "base"}
    again = pref.next_pair(engine, annotator, round_id)
    assert again is not None and dataclasses.replace(again, lease_until=pair.lease_until) == pair  # same order
    # over many prompts and two annotators both orders occur (the hash is not constant)
    orders = {pref.a_first(0, item, user) for item in range(20) for user in (1, 2)}
    assert orders == {True, False}


def test_judging_maps_the_shown_order_to_systems(engine: Engine, lead: User, annotator: User, run_id: int) -> None:
    round_id = generated_round(engine, lead, run_id, size=2, overlap_k=1)
    pair = pref.next_pair(engine, annotator, round_id)
    assert pair is not None
    better = "first" if pair.first.startswith("adapter") else "second"
    assert pref.judge(engine, annotator, pair.item_id, better) == "a"
    with pytest.raises(Conflict, match="already judged"):
        pref.judge(engine, annotator, pair.item_id, "tie")
    with pytest.raises(InputError):
        pref.judge(engine, annotator, pair.item_id, "a")  # system names are not an answer
    pair = pref.next_pair(engine, annotator, round_id)
    assert pair is not None
    assert pref.judge(engine, annotator, pair.item_id, "both_bad") == "both_bad"
    assert pref.next_pair(engine, annotator, round_id) is None
    result = pref.round_result(engine, lead, round_id)
    assert result["status"] == "done"
    assert result["win_rate"]["value"] == pytest.approx(0.75)
    assert [(p["a"], p["both_bad"]) for p in result["per_prompt"]] == [(1, 0), (0, 1)]


@BOTH_BACKENDS
def test_leases_hold_k_slots_and_lapse(engine: Engine, lead: User, annotator: User, second_annotator: User,
                                       run_id: int) -> None:
    round_id = generated_round(engine, lead, run_id, size=1, overlap_k=1)
    held = pref.next_pair(engine, annotator, round_id)
    assert held is not None
    assert pref.next_pair(engine, second_annotator, round_id) is None  # the only slot is leased
    with pytest.raises(Conflict, match="all its judgements"):
        pref.judge(engine, second_annotator, held.item_id, "tie")
    # a lease that lapses frees the slot
    round2 = generated_round(engine, lead, run_id, size=1, overlap_k=1)
    lapsed = pref.next_pair(engine, annotator, round2, lease=timedelta(seconds=-1))
    assert lapsed is not None
    taken = pref.next_pair(engine, second_annotator, round2)
    assert taken is not None and taken.item_id == lapsed.item_id
    with pytest.raises(Conflict):
        pref.judge(engine, annotator, lapsed.item_id, "first")


@BOTH_BACKENDS
def test_result_becomes_part_of_the_run_record(engine: Engine, lead: User, annotator: User,
                                               second_annotator: User, run_id: int) -> None:
    round_id = generated_round(engine, lead, run_id, size=3, overlap_k=2)
    for user in (annotator, second_annotator):
        while (pair := pref.next_pair(engine, user, round_id)) is not None:
            pref.judge(engine, user, pair.item_id, "first" if pair.first.startswith("adapter") else "second")
    with read_session(engine) as session:
        run = session.get(TrainingRun, run_id)
        round_ = session.get(PreferenceRound, round_id)
    assert round_ is not None and round_.status == "done"
    assert run is not None
    record = run.metrics["preference"]
    assert record["round_id"] == round_id
    assert (record["system_a"], record["system_b"]) == (f"run #{run_id} adapter", "base model")
    assert record["win_rate"]["value"] == 1.0 and record["judgements"] == 6 and record["prompts"] == 3
    assert record["tie_rate"] == 0.0 and record["both_bad_rate"] == 0.0
    assert run.metrics["adapter"] == RUN_METRICS["adapter"]  # the rest of the record is kept
    assert [r.judgements for r in pref.list_rounds(engine, lead, run_id=run_id)] == [6]
    assert pref.open_rounds(engine, annotator, round_.project_id) == []


def test_run_a_against_run_b(engine: Engine, lead: User, run_id: int) -> None:
    with read_session(engine) as session:
        version_id = session.get(TrainingRun, run_id).version_id  # type: ignore[union-attr]
    other = finished_run(engine, lead, version_id)
    round_id = generated_round(engine, lead, run_id, other_run_id=other, size=2)
    result = pref.round_result(engine, lead, round_id)
    assert (result["system_a"], result["system_b"]) == (f"run #{run_id} adapter", f"run #{other} adapter")
    assert result["win_rate"] is None and result["verdict"] == "no judgements yet"
