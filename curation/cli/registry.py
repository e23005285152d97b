"""Commands other packages add to `python -m curation`, so the core never imports them.

A package builds a `CommandGroup` (a function that adds its subparsers and a handler per command) and
names it under the `curation.commands` entry-point group in its pyproject.toml:

    [project.entry-points."curation.commands"]
    training = "training.cli:COMMANDS"

`registered()` loads every group once. `register()` adds one directly (tests, scripts).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from sqlalchemy.engine import Engine

ENTRY_POINT_GROUP = "curation.commands"

Handler = Callable[[Engine, argparse.Namespace], int]


@dataclass(frozen=True)
class CommandGroup:
    """`add_commands(subparsers)` adds the group's commands; `handlers` maps each command name to its handler."""

    name: str
    add_commands: Callable[[Any], None]
    handlers: Mapping[str, Handler]


_GROUPS: dict[str, CommandGroup] = {}
_loaded = False


def register(group: CommandGroup) -> None:
    _GROUPS[group.name] = group


def registered() -> list[CommandGroup]:
    """Every group: those registered directly and those named by installed entry points, in name order."""
    global _loaded
    if not _loaded:
        for point in entry_points(group=ENTRY_POINT_GROUP):
            if point.name not in _GROUPS:
                register(point.load())
        _loaded = True
    return [_GROUPS[name] for name in sorted(_GROUPS)]
