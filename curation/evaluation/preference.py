"""Blind human preference between two generation systems (issue 11, item 7).

A lead starts a *round* on N prompts of a run's test-set version (else of its dataset version's eval
split) comparing system A, the run's adapter, with system B: the base model, or another run's adapter
(same project, same test set). The round is stored as `generating` until a background worker
(`training/preference_job.py`, which this module never imports) writes both responses of every prompt;
then annotators judge.

Blindness: an annotator gets a `BlindPair` (the prompt and two responses called *first* and *second*)
and never a system name. Which system comes first is fixed per (round seed, prompt, annotator) by a hash,
so a reload shows the same order and different annotators see different orders. Judgements
(`first`, `second`, `tie`, `both_bad`) are stored in system terms (`a`, `b`, `tie`, `both_bad`).

Slots: each prompt takes `overlap_k` judgements from different annotators. The review queue's lease
pattern (curation/review/queue.py): `next_pair` leases one slot of a prompt to the annotator for
`LEASE`; a lapsed lease frees the slot; judging deletes the lease. Claims lock the round row
(PostgreSQL) or hold SQLite's writer lock, so k is never exceeded.

Result (`preference_result`): the win rate of A over B counts a tie and "both bad" as half a win (neither
system was preferred), over all judgements, with a seeded bootstrap 95% interval that resamples prompts
(a prompt's judgements stay together); tie and both-bad shares; Krippendorff's alpha (nominal) on the
judgements; and a per-prompt view. Reading a round's result as a lead also writes it into run A's
metrics under "preference" (the run's record; the model card and the objective line read it there).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from curation.access import audit
from curation.access.roles import LEADS, require_role
from curation.agreement.coefficients import krippendorff_alpha
from curation.db import read_session
from curation.errors import Conflict, InputError, NotFound
from curation.evaluation.stats import SEED, ratio_interval
from curation.lookup import get_or_not_found
from curation.models import (
    DatasetVersion,
    DatasetVersionItem,
    PreferenceItem,
    PreferenceJudgement,
    PreferenceLease,
    PreferenceRound,
    PreferenceRoundStatus,
    Role,
    RunStatus,
    TaskType,
    TestSetItem,
    TestSetVersion,
    TrainingRun,
    User,
    utcnow,
)
from curation.retry import run_write

ANNOTATING = (Role.annotator, Role.lead, Role.admin)
LEASE = timedelta(minutes=30)
MAX_PROMPTS = 500
CHOICES = ("first", "second", "tie", "both_bad")  # what an annotator answers (blind)
VERDICTS = ("a", "b", "tie", "both_bad")  # what is stored (system terms)
SCORE = {"a": 1.0, "b": 0.0, "tie": 0.5, "both_bad": 0.5}  # A's share of a win


@dataclass(frozen=True)
class BlindPair:
    """What an annotator sees: no system names, no run ids; `first`/`second` in their fixed order."""

    round_id: int
    item_id: int
    messages: list[dict[str, str]]  # the conversation up to the answer
    first: str
    second: str
    lease_until: datetime
    judged: int  # prompts of the round this annotator has judged
    total: int  # prompts in the round


@dataclass(frozen=True)
class RoundSummary:
    """A round for a lead's list (system names included)."""

    id: int
    project_id: int
    run_id: int
    system_a: str
    system_b: str
    status: str
    size: int
    overlap_k: int
    judgements: int
    prompt_source: str
    error: str | None
    created_at: datetime


# --------------------------------------------------------------------------- starting a round


def system_names(round_: PreferenceRound) -> tuple[str, str]:
    """("run #3 adapter", "base model") or ("run #3 adapter", "run #5 adapter")."""
    other = "base model" if round_.other_run_id is None else f"run #{round_.other_run_id} adapter"
    return f"run #{round_.run_id} adapter", other


def start_round(engine: Engine, actor: User, run_id: int, *, other_run_id: int | None = None, size: int = 20,
                overlap_k: int = 2, seed: int = SEED, max_new_tokens: int = 64) -> PreferenceRound:
    """Create a round (status `generating`) of `size` prompts drawn at random (seeded) from run
    `run_id`'s test-set version, else from its dataset version's eval split. System B is run
    `other_run_id` (same project and test set) or, when None, the base model. Leads only; audited.
    The caller starts the worker that generates the responses (training/preference_job.py)."""
    require_role(actor, *LEADS)
    if not 1 <= size <= MAX_PROMPTS:
        raise InputError(f"a round takes between 1 and {MAX_PROMPTS} prompts", field="size")
    if not 1 <= overlap_k <= 20:
        raise InputError("judgements per prompt must be between 1 and 20", field="overlap_k")
    if not 1 <= max_new_tokens <= 2048:
        raise InputError("max new tokens must be between 1 and 2048", field="max_new_tokens")

    def work(session: Session) -> PreferenceRound:
        run = _finished_generation_run(session, run_id)
        if other_run_id is not None:
            if other_run_id == run_id:
                raise InputError("compare a run with the base model or with another run", field="other_run_id")
            other = _finished_generation_run(session, other_run_id)
            if other.project_id != run.project_id:
                raise Conflict(f"Runs #{run_id} and #{other_run_id} belong to different projects.")
            if other.test_set_version_id != run.test_set_version_id:
                raise Conflict(f"Runs #{run_id} and #{other_run_id} were scored on different test sets: "
                               "compare runs on the same test-set version (score one with `eval RUN --testset N`).")
        prompts, source = _prompts(session, run)
        if not prompts:
            raise Conflict(f"Run #{run_id} has no test items or eval items with a prompt to compare on.")
        chosen = sorted(random.Random(seed).sample(range(len(prompts)), min(size, len(prompts))))
        round_ = PreferenceRound(project_id=run.project_id, run_id=run_id, other_run_id=other_run_id,
                                 test_set_version_id=run.test_set_version_id, prompt_source=source,
                                 size=len(chosen), overlap_k=overlap_k, seed=seed, max_new_tokens=max_new_tokens,
                                 status=PreferenceRoundStatus.generating, created_by_id=actor.id)
        session.add(round_)
        session.flush()
        assert round_.id is not None
        for position, index in enumerate(chosen):
            external_id, messages, reference = prompts[index]
            session.add(PreferenceItem(round_id=round_.id, position=position, external_id=external_id,
                                       messages=messages, reference=reference))
        system_a, system_b = system_names(round_)
        audit.record(session, actor, "preference.start", "preference_round", round_.id, project_id=run.project_id,
                     after={"system_a": system_a, "system_b": system_b, "prompts": len(chosen),
                            "overlap_k": overlap_k, "seed": seed, "source": source})
        return round_

    return run_write(engine, work)


def _finished_generation_run(session: Session, run_id: int) -> TrainingRun:
    run = get_or_not_found(session, TrainingRun, run_id)
    if str(run.task_type) != TaskType.generation.value:
        raise Conflict(f"Run #{run_id} is a classification run: blind preference compares generated responses.")
    if str(run.status) != RunStatus.succeeded.value or not run.output_dir:
        raise Conflict(f"Run #{run_id} is {run.status}: only a finished run with its adapter can be compared.")
    return run


def split_prompt(messages: Sequence[dict[str, Any]]) -> tuple[list[dict[str, str]], str | None]:
    """(the chat up to its last assistant turn, that turn's text). No assistant turn: (all, None)."""
    turns = [{"role": str(m.get("role", "")), "content": str(m.get("content", ""))} for m in messages]
    last = max((i for i, m in enumerate(turns) if m["role"] == "assistant"), default=None)
    if last is None:
        return turns, None
    return turns[:last], turns[last]["content"]


def _prompts(session: Session, run: TrainingRun) -> tuple[list[tuple[str, list[dict[str, str]], str | None]], str]:
    """(external id, prompt chat, reference) of every candidate item, and where they come from."""
    rows: list[tuple[str, list[dict[str, Any]]]] = []
    if run.test_set_version_id is not None:
        version = get_or_not_found(session, TestSetVersion, run.test_set_version_id)
        items = session.execute(select(TestSetItem).where(col(TestSetItem.test_set_version_id) == version.id)
                                .order_by(col(TestSetItem.id))).scalars().all()
        rows = [(i.external_id, i.messages or [{"role": "user", "content": i.prompt or ""},
                                               {"role": "assistant", "content": i.response or ""}])
                for i in items if i.messages or i.prompt]
        source = f"test set v{version.number} (sha256 {version.content_hash[:12]})"
    else:
        dataset = get_or_not_found(session, DatasetVersion, run.version_id)
        items = session.execute(select(DatasetVersionItem).where(col(DatasetVersionItem.version_id) == dataset.id,
                                                                 col(DatasetVersionItem.split) == "eval")
                                .order_by(col(DatasetVersionItem.id))).scalars().all()
        rows = [(i.external_id, i.messages or [{"role": "user", "content": i.prompt or ""},
                                               {"role": "assistant", "content": i.response or ""}])
                for i in items if i.messages or i.prompt]
        source = f"eval split of dataset v{dataset.number} (no test set: these items also chose the early stopping)"
    out = []
    for external_id, messages in rows:
        prompt, reference = split_prompt(messages)
        if prompt:
            out.append((external_id, prompt, reference))
    return out, source


# --------------------------------------------------------------------------- the generating worker


def round_creator(engine: Engine, round_id: int) -> User:
    """The lead who started the round: the background worker acts on their behalf."""
    with read_session(engine) as session:
        round_ = get_or_not_found(session, PreferenceRound, round_id)
        user = session.get(User, round_.created_by_id) if round_.created_by_id else None
    if user is None:
        raise NotFound(f"Round {round_id} has no creator to act for.")
    return user


def generation_spec(engine: Engine, actor: User, round_id: int) -> dict[str, Any]:
    """What the worker needs: {"round_id", "max_new_tokens", "run_dir_a", "run_dir_b" (None: the base
    model of run A), "items": [{"id", "messages"}]}. Leads only."""
    require_role(actor, *LEADS)
    with read_session(engine) as session:
        round_ = get_or_not_found(session, PreferenceRound, round_id)
        run_a = get_or_not_found(session, TrainingRun, round_.run_id)
        run_b = get_or_not_found(session, TrainingRun, round_.other_run_id) if round_.other_run_id else None
        items = _items(session, round_id)
    return {"round_id": round_id, "max_new_tokens": round_.max_new_tokens, "run_dir_a": run_a.output_dir,
            "run_dir_b": run_b.output_dir if run_b else None,
            "items": [{"id": i.id, "messages": i.messages} for i in items]}


def store_responses(engine: Engine, actor: User, round_id: int, responses: dict[int, tuple[str, str]]) -> PreferenceRound:
    """Write both systems' responses (item id -> (A's, B's)) in one transaction and open the round for
    judging. Every item of the round needs both. Leads only (the worker acts for the round's creator)."""
    require_role(actor, *LEADS)

    def work(session: Session) -> PreferenceRound:
        round_ = _locked_round(session, round_id)
        if round_.status != PreferenceRoundStatus.generating:
            raise Conflict(f"Round {round_id} is {round_.status}: its responses are already written.")
        items = _items(session, round_id)
        missing = [i.position for i in items if i.id not in responses]
        if missing:
            raise InputError(f"responses missing for prompts at positions {missing[:10]}", field="responses")
        for item in items:
            item.response_a, item.response_b = (str(text) for text in responses[int(item.id or 0)])
            session.add(item)
        round_.status, round_.generated_at, round_.error = PreferenceRoundStatus.open, utcnow(), None
        session.add(round_)
        audit.record(session, actor, "preference.generated", "preference_round", round_id,
                     project_id=round_.project_id, after={"prompts": len(items)})
        return round_

    return run_write(engine, work)


def fail_generation(engine: Engine, actor: User, round_id: int, error: str) -> None:
    """Mark a round whose generation failed (the page and the CLI show `error`)."""
    require_role(actor, *LEADS)

    def work(session: Session) -> None:
        round_ = _locked_round(session, round_id)
        if round_.status == PreferenceRoundStatus.generating:
            round_.status, round_.error = PreferenceRoundStatus.failed, error[:4000]
            session.add(round_)

    run_write(engine, work)


# --------------------------------------------------------------------------- judging (blind)


def a_first(seed: int, item_id: int, annotator_id: int) -> bool:
    """Whether system A's response is shown first to this annotator for this prompt: a hash of
    (seed, prompt, annotator), so the order survives reloads and differs between annotators."""
    digest = hashlib.sha256(f"preference:{seed}:{item_id}:{annotator_id}".encode()).digest()
    return digest[0] % 2 == 0


def open_rounds(engine: Engine, actor: User, project_id: int) -> list[tuple[int, int, int]]:
    """(round id, prompts left for `actor`, prompts in the round) of the project's rounds open for
    judging, oldest first. No system names: annotators use this."""
    require_role(actor, *ANNOTATING)
    with read_session(engine) as session:
        rounds = session.execute(select(PreferenceRound).where(
            col(PreferenceRound.project_id) == project_id, col(PreferenceRound.status) == PreferenceRoundStatus.open)
            .order_by(col(PreferenceRound.id))).scalars().all()
        out = []
        for round_ in rounds:
            mine = session.execute(select(func.count()).select_from(PreferenceJudgement).where(
                col(PreferenceJudgement.round_id) == round_.id,
                col(PreferenceJudgement.annotator_id) == actor.id)).scalar_one()
            out.append((int(round_.id or 0), round_.size - int(mine), round_.size))
    return out


def next_pair(engine: Engine, actor: User, round_id: int, *, lease: timedelta = LEASE) -> BlindPair | None:
    """The pair `actor` should judge next in the round, with one of its k slots leased to them, or None
    when nothing is left for them. Asking again before judging returns the same pair (lease renewed)."""
    require_role(actor, *ANNOTATING)

    def work(session: Session) -> BlindPair | None:
        round_ = _locked_round(session, round_id)
        if round_.status != PreferenceRoundStatus.open:
            return None
        now = utcnow()
        session.execute(delete(PreferenceLease).where(col(PreferenceLease.round_id) == round_id,
                                                      col(PreferenceLease.annotator_id) == actor.id,
                                                      col(PreferenceLease.expires_at) <= now))
        held = session.execute(select(PreferenceLease).where(col(PreferenceLease.round_id) == round_id,
                                                             col(PreferenceLease.annotator_id) == actor.id)
                               .order_by(col(PreferenceLease.id))).scalars().first()
        if held is not None:
            held.expires_at = now + lease
            session.add(held)
            item = get_or_not_found(session, PreferenceItem, held.item_id)
        else:
            found = _claimable(session, round_, actor, now)
            if found is None:
                return None
            item = found
            session.add(PreferenceLease(round_id=round_id, item_id=int(item.id or 0), annotator_id=int(actor.id or 0),
                                        created_at=now, expires_at=now + lease))
        judged = _judged_by(session, round_id, int(actor.id or 0))
        return _blind(round_, item, int(actor.id or 0), now + lease, judged)

    return run_write(engine, work)


def _claimable(session: Session, round_: PreferenceRound, actor: User, now: datetime) -> PreferenceItem | None:
    """The first prompt (fewest judgements, then position) the actor has not judged with a free slot."""
    counts = Counter(session.execute(select(col(PreferenceJudgement.item_id)).where(
        col(PreferenceJudgement.round_id) == round_.id)).scalars().all())
    leases = Counter(session.execute(select(col(PreferenceLease.item_id)).where(
        col(PreferenceLease.round_id) == round_.id, col(PreferenceLease.expires_at) > now)).scalars().all())
    mine = set(session.execute(select(col(PreferenceJudgement.item_id)).where(
        col(PreferenceJudgement.round_id) == round_.id, col(PreferenceJudgement.annotator_id) == actor.id)).scalars().all())
    free = [i for i in _items(session, int(round_.id or 0))
            if i.id not in mine and counts[i.id] + leases[i.id] < round_.overlap_k]
    return min(free, key=lambda i: (counts[i.id], i.position), default=None)


def _blind(round_: PreferenceRound, item: PreferenceItem, annotator_id: int, until: datetime, judged: int) -> BlindPair:
    first_is_a = a_first(round_.seed, int(item.id or 0), annotator_id)
    a, b = item.response_a or "", item.response_b or ""
    return BlindPair(round_id=int(round_.id or 0), item_id=int(item.id or 0),
                     messages=[{"role": m["role"], "content": m["content"]} for m in item.messages],
                     first=a if first_is_a else b, second=b if first_is_a else a, lease_until=_aware(until),
                     judged=judged, total=round_.size)


def judge(engine: Engine, actor: User, item_id: int, choice: str) -> str:
    """Record `actor`'s blind judgement of a prompt: `first`, `second` (the better response, as shown
    to them), `tie` or `both_bad`. Returns what was stored in system terms. Refused when they judged it
    already or when its k slots are taken by others (their lease lapsed and someone else took it)."""
    require_role(actor, *ANNOTATING)
    if choice not in CHOICES:
        raise InputError(f"choose one of {', '.join(CHOICES)}", field="choice")

    def work(session: Session) -> str:
        item = get_or_not_found(session, PreferenceItem, item_id)
        round_ = _locked_round(session, item.round_id)
        if round_.status != PreferenceRoundStatus.open:
            raise Conflict(f"Round {round_.id} is {round_.status}: it takes no judgements.")
        now = utcnow()
        if session.execute(select(col(PreferenceJudgement.id)).where(col(PreferenceJudgement.item_id) == item_id,
                                                                col(PreferenceJudgement.annotator_id) == actor.id)).first():
            raise Conflict("You have already judged this prompt.")
        taken = session.execute(select(func.count()).select_from(PreferenceJudgement).where(
            col(PreferenceJudgement.item_id) == item_id)).scalar_one()
        others = session.execute(select(func.count()).select_from(PreferenceLease).where(
            col(PreferenceLease.item_id) == item_id, col(PreferenceLease.annotator_id) != actor.id,
            col(PreferenceLease.expires_at) > now)).scalar_one()
        if int(taken) + int(others) >= round_.overlap_k:
            raise Conflict("This prompt already has all its judgements (your hold on it lapsed); take the next one.")
        first_is_a = a_first(round_.seed, item_id, int(actor.id or 0))
        verdict = {"first": "a" if first_is_a else "b", "second": "b" if first_is_a else "a"}.get(choice, choice)
        session.add(PreferenceJudgement(round_id=int(round_.id or 0), item_id=item_id, annotator_id=int(actor.id or 0),
                                        choice=verdict, a_first=first_is_a, created_at=now))
        session.execute(delete(PreferenceLease).where(col(PreferenceLease.item_id) == item_id,
                                                      col(PreferenceLease.annotator_id) == actor.id))
        session.flush()
        total = session.execute(select(func.count()).select_from(PreferenceJudgement).where(
            col(PreferenceJudgement.round_id) == round_.id)).scalar_one()
        if int(total) >= round_.size * round_.overlap_k:
            round_.status = PreferenceRoundStatus.done
            session.add(round_)
            _write_to_run(session, round_)
        return verdict

    return run_write(engine, work)


# --------------------------------------------------------------------------- results (leads)


def preference_result(judgements: Sequence[tuple[int, int, str]], *, seed: int = SEED) -> dict[str, Any]:
    """Win rate of system A over B from (prompt id, annotator id, verdict in a|b|tie|both_bad) rows.

    win_rate: (A wins + (ties + both bad) / 2) / judgements, with a bootstrap 95% interval resampling
    prompts (seeded); tie_rate, both_bad_rate: shares of judgements; alpha: Krippendorff's alpha
    (nominal, over the four verdicts; None when undefined, e.g. one judgement per prompt or all
    verdicts the same); verdict: "A preferred" / "B preferred" when the interval excludes 0.5, else
    "no detectable preference". No judgements: win_rate None."""
    for _, _, verdict in judgements:
        if verdict not in VERDICTS:
            raise InputError(f"unknown verdict '{verdict}'", field="choice")
    by_prompt: dict[int, list[str]] = defaultdict(list)
    by_pair: dict[tuple[int, int], str] = {}
    for prompt, annotator, verdict in judgements:
        by_prompt[prompt].append(verdict)
        by_pair[(prompt, annotator)] = verdict
    counts = Counter(v for _, _, v in judgements)
    n = len(judgements)
    out: dict[str, Any] = {"prompts": len(by_prompt), "judgements": n, "wins": counts["a"], "losses": counts["b"],
                           "ties": counts["tie"], "both_bad": counts["both_bad"],
                           "tie_rate": counts["tie"] / n if n else None,
                           "both_bad_rate": counts["both_bad"] / n if n else None}
    if not n:
        return {**out, "win_rate": None, "alpha": None, "verdict": "no judgements yet"}
    prompts = sorted(by_prompt)
    interval = ratio_interval([sum(SCORE[v] for v in by_prompt[p]) for p in prompts],
                              [len(by_prompt[p]) for p in prompts], seed=seed)
    out["win_rate"] = {"value": interval.value, "low": interval.low, "high": interval.high, "n": interval.n,
                       "confidence": interval.confidence}
    annotators = sorted({a for _, a, _ in judgements})
    matrix = [[by_pair.get((p, a)) for a in annotators] for p in prompts]
    try:
        alpha = krippendorff_alpha(matrix, "nominal", categories=list(VERDICTS))
    except ValueError:
        alpha = float("nan")
    out["alpha"] = None if math.isnan(alpha) else float(alpha)
    out["verdict"] = ("A preferred" if interval.low > 0.5 else "B preferred" if interval.high < 0.5
                      else "no detectable preference")
    return out


def round_result(engine: Engine, actor: User, round_id: int) -> dict[str, Any]:
    """The round's result (see `preference_result`) with system names, prompt source, status and a
    per-prompt view [{position, external_id, messages, reference, response_a, response_b, a, b, tie,
    both_bad, score}]. Leads only. Also writes the summary into run A's metrics["preference"]."""
    require_role(actor, *LEADS)

    def work(session: Session) -> dict[str, Any]:
        round_ = get_or_not_found(session, PreferenceRound, round_id)
        result = _result(session, round_)
        if result["judgements"]:
            _write_to_run(session, round_, result)
        return {**result, "per_prompt": _per_prompt(session, round_)}

    return run_write(engine, work)


def list_rounds(engine: Engine, actor: User, project_id: int | None = None, run_id: int | None = None) -> list[RoundSummary]:
    """Rounds (newest first) of a project or of a run (as system A or B). Leads only."""
    require_role(actor, *LEADS)
    with read_session(engine) as session:
        query = select(PreferenceRound).order_by(col(PreferenceRound.id).desc())
        if project_id is not None:
            query = query.where(col(PreferenceRound.project_id) == project_id)
        if run_id is not None:
            query = query.where((col(PreferenceRound.run_id) == run_id) | (col(PreferenceRound.other_run_id) == run_id))
        rounds = session.execute(query).scalars().all()
        counts = dict(session.execute(select(col(PreferenceJudgement.round_id), func.count())
                                      .group_by(col(PreferenceJudgement.round_id))).all())
    out = []
    for r in rounds:
        a, b = system_names(r)
        out.append(RoundSummary(id=int(r.id or 0), project_id=r.project_id, run_id=r.run_id, system_a=a, system_b=b,
                                status=str(r.status), size=r.size, overlap_k=r.overlap_k,
                                judgements=int(counts.get(r.id, 0)), prompt_source=r.prompt_source, error=r.error,
                                created_at=_aware(r.created_at)))
    return out


def get_round(engine: Engine, actor: User, round_id: int) -> PreferenceRound:
    require_role(actor, *LEADS)
    with read_session(engine) as session:
        return get_or_not_found(session, PreferenceRound, round_id)


def _result(session: Session, round_: PreferenceRound) -> dict[str, Any]:
    rows = session.execute(select(col(PreferenceJudgement.item_id), col(PreferenceJudgement.annotator_id),
                                  col(PreferenceJudgement.choice)).where(
        col(PreferenceJudgement.round_id) == round_.id)).all()
    system_a, system_b = system_names(round_)
    result = preference_result([(int(i), int(a), str(c)) for i, a, c in rows], seed=round_.seed)
    return {"round_id": round_.id, "system_a": system_a, "system_b": system_b, "status": str(round_.status),
            "size": round_.size, "overlap_k": round_.overlap_k, "prompt_source": round_.prompt_source,
            "test_set_version_id": round_.test_set_version_id, **result}


def _write_to_run(session: Session, round_: PreferenceRound, result: dict[str, Any] | None = None) -> None:
    """Run A's record: metrics["preference"] = the latest read of its newest round's result."""
    run = session.get(TrainingRun, round_.run_id)
    if run is None:
        return
    summary = result if result is not None else _result(session, round_)
    current = (run.metrics or {}).get("preference") or {}
    if current.get("round_id") and int(current["round_id"]) > int(round_.id or 0):
        return  # a newer round speaks for the run
    run.metrics = {**(run.metrics or {}), "preference": {k: v for k, v in summary.items() if k != "per_prompt"}}
    session.add(run)


def _per_prompt(session: Session, round_: PreferenceRound) -> list[dict[str, Any]]:
    rows = session.execute(select(col(PreferenceJudgement.item_id), col(PreferenceJudgement.choice)).where(
        col(PreferenceJudgement.round_id) == round_.id)).all()
    by_item: dict[int, Counter[str]] = defaultdict(Counter)
    for item_id, choice in rows:
        by_item[int(item_id)][str(choice)] += 1
    out = []
    for item in _items(session, int(round_.id or 0)):
        c = by_item[int(item.id or 0)]
        n = sum(c.values())
        out.append({"position": item.position, "external_id": item.external_id, "messages": item.messages,
                    "reference": item.reference, "response_a": item.response_a, "response_b": item.response_b,
                    "a": c["a"], "b": c["b"], "tie": c["tie"], "both_bad": c["both_bad"],
                    "score": sum(SCORE[v] * k for v, k in c.items()) / n if n else None})
    return out


# --------------------------------------------------------------------------- internals


def _items(session: Session, round_id: int) -> list[PreferenceItem]:
    return list(session.execute(select(PreferenceItem).where(col(PreferenceItem.round_id) == round_id)
                                .order_by(col(PreferenceItem.position))).scalars().all())


def _locked_round(session: Session, round_id: int) -> PreferenceRound:
    """The round row, locked on PostgreSQL (claims and judgements of one round go one at a time)."""
    round_ = session.execute(select(PreferenceRound).where(col(PreferenceRound.id) == round_id)
                             .with_for_update()).scalars().first()
    if round_ is None:
        raise NotFound(f"Preference round {round_id} does not exist.")
    return round_


def _judged_by(session: Session, round_id: int, annotator_id: int) -> int:
    return int(session.execute(select(func.count()).select_from(PreferenceJudgement).where(
        col(PreferenceJudgement.round_id) == round_id, col(PreferenceJudgement.annotator_id) == annotator_id)).scalar_one())


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
