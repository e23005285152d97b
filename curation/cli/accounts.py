"""CLI commands for accounts: users list/add/set."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from curation.access.accounts import create_user, get_user, list_users
from curation.cli.common import acting_user
from curation.db import read_session
from curation.errors import InputError
from curation.models import Role, User


def _users(engine: Engine, args: argparse.Namespace) -> int:
    if args.users_command == "add":
        password = sys.stdin.readline().rstrip("\n") if args.password_stdin else args.password
        with read_session(engine) as session:
            first = session.execute(select(User.id).where(User.password_hash.is_not(None))).first() is None
        actor = None if first else acting_user(engine, args)
        user = create_user(engine, actor, args.username, Role(args.role), password, args.display_name)
        print(f"added {user.username} ({user.role})")
        return 0
    if args.users_command == "set":
        return _users_set(engine, args)
    users = list_users(engine, acting_user(engine, args))
    rows: list[dict[str, Any]] = [{"username": u.username, "role": Role(u.role).value, "active": u.active,
                                   "imported": u.imported, "can_log_in": bool(u.password_hash)} for u in users]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            flags = "" if row["can_log_in"] else " (imported, no login)"
            print(f"{row['username']:<30} {row['role']:<10}{'' if row['active'] else ' inactive'}{flags}")
    return 0


def _users_set(engine: Engine, args: argparse.Namespace) -> int:
    from curation.access.accounts import set_active, set_password, set_role

    actor = acting_user(engine, args)
    user = get_user(engine, args.username)
    if args.role is None and not args.active and not args.inactive and not args.password_stdin:
        raise InputError("say what to change: --role, --active, --inactive or --password-stdin")
    if args.password_stdin:
        user = set_password(engine, actor, user.id, sys.stdin.readline().rstrip("\n"))
        print(f"{user.username}: password set")
    if args.role is not None:
        user = set_role(engine, actor, user.id, Role(args.role))
    if args.active or args.inactive:
        user = set_active(engine, actor, user.id, bool(args.active))
    print(f"{user.username}: {Role(user.role).value}, {'active' if user.active else 'inactive'}")
    return 0
