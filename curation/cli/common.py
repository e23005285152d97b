"""Helpers shared by the CLI command modules."""

from __future__ import annotations

import argparse

from sqlalchemy import select
from sqlalchemy.engine import Engine

from curation.access.accounts import get_user
from curation.db import read_session
from curation.errors import NotFound
from curation.models import Role, User


def acting_user(engine: Engine, args: argparse.Namespace) -> User:
    import os

    username = args.user or os.environ.get("CURATION_USER")
    if username:
        return get_user(engine, username)
    with read_session(engine) as session:
        admin = session.execute(select(User).where(User.role == Role.admin.value, User.active.is_(True))
                                .order_by(User.id)).scalars().first()
    if admin is None:
        raise NotFound("No admin account yet: create one with "
                       "`python -m curation users add NAME --role admin --password-stdin`.")
    return admin
