"""The helpers that replaced copies: get-or-NotFound, alive(pid), the most-disputed ranking and the CLI's
command registry. Hand-made inputs, exact answers."""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys

import pytest
from sqlalchemy.engine import Engine

from curation.cli.main import main
from curation.cli.registry import _GROUPS, CommandGroup, register, registered
from curation.errors import NotFound
from curation.lookup import get_or_not_found, noun, read_or_not_found
from curation.models import DatasetVersion, Project, TrainingRun, User
from curation.process import alive
from curation.review.rules import dispute_figures, most_disputed_first


def test_lookup_returns_the_row_or_names_the_missing_one(engine: Engine, admin: User) -> None:
    assert read_or_not_found(engine, User, admin.id).username == admin.username
    with pytest.raises(NotFound, match=r"^No project with id 999\.$"):
        read_or_not_found(engine, Project, 999)
    from curation.db import read_session

    with read_session(engine) as session, pytest.raises(NotFound, match=r"^No training run with id None\.$"):
        get_or_not_found(session, TrainingRun, None)
    assert (noun(DatasetVersion), noun(TrainingRun), noun(Project)) == ("dataset version", "training run", "project")


def test_alive_running_finished_and_missing_processes() -> None:
    assert alive(os.getpid())
    assert not alive(None) and not alive(0)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    while True:  # a finished child that is not reaped yet is a zombie: not alive
        try:
            with open(f"/proc/{child.pid}/stat", encoding="utf-8") as handle:
                if handle.read().split(")")[-1].split()[0] == "Z":
                    break
        except OSError:
            break
    assert not alive(child.pid)
    child.wait()
    assert not alive(child.pid)


def test_most_disputed_first_orders_by_share_distinct_entropy_answers_then_id() -> None:
    counts = [
        [2, 1, 0],  # id 10: share 2/3
        [1, 1, 1],  # id 11: share 1/3, 3 distinct
        [1, 1, 0],  # id 12: share 1/2, 2 answers
        [2, 2, 0],  # id 13: share 1/2, 4 answers (more answers first on a tie)
        [1, 1, 0],  # id 9: same as 12, lower id first
    ]
    assert most_disputed_first(counts, [10, 11, 12, 13, 9]).tolist() == [1, 3, 4, 2, 0]
    figures = dispute_figures(counts)
    assert figures.n_answers.tolist() == [3, 3, 2, 4, 2]
    assert figures.distinct.tolist() == [2, 3, 2, 2, 2]
    assert figures.majority_share.tolist() == pytest.approx([2 / 3, 1 / 3, 0.5, 0.5, 0.5])
    assert figures.entropy[1] == pytest.approx(math.log2(3)) and figures.entropy[2] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="items x answers"):
        dispute_figures([1, 2])


def test_a_registered_command_group_joins_the_cli(engine: Engine, admin: User) -> None:
    seen: list[str] = []

    def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
        commands.add_parser("hello").add_argument("name")

    def hello(_engine: Engine, args: argparse.Namespace) -> int:
        seen.append(args.name)
        return 7

    register(CommandGroup("test-hello", add_commands, {"hello": hello}))
    try:
        assert "training" in [group.name for group in registered()]  # the entry point of this package
        assert main(["hello", "world"]) == 7
        assert seen == ["world"]
    finally:
        _GROUPS.pop("test-hello")
