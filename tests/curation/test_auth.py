"""Accounts: argon2 hashing, authentication failures that all look the same, bootstrap of the first
account, and who may add users."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

from curation.access.accounts import (
    authenticate,
    create_user,
    get_user,
    hash_password,
    list_users,
    verify_password,
)
from curation.access.roles import require_role
from curation.data.formats import open_table
from curation.data.importer import import_table
from curation.data.mapping import ColumnMapping
from curation.data.projects import create_project
from curation.db import read_session, write_session
from curation.errors import Conflict, InputError, NotFound, PermissionDenied
from curation.models import AuditEvent, Role, User


def test_argon2_hash_and_verify() -> None:
    hashed = hash_password("correct horse")
    assert hashed.startswith("$argon2id$") and "correct horse" not in hashed
    assert hashed != hash_password("correct horse")  # salted
    assert verify_password(hashed, "correct horse")
    assert not verify_password(hashed, "correct horse ")
    assert not verify_password(hashed, "")
    assert not verify_password(None, "correct horse")
    assert not verify_password("", "correct horse")
    assert not verify_password("not-a-hash", "correct horse")


def test_first_account_bootstraps_without_actor_then_only_admins_add(engine: Engine) -> None:
    root = create_user(engine, None, "  root ", Role.admin, "root-password", display_name="Root")
    assert (root.username, root.display_name, root.role, root.imported, root.active) == (
        "root", "Root", Role.admin, False, True)
    with pytest.raises(PermissionDenied, match="Only an admin can add users once the first account exists."):
        create_user(engine, None, "second", Role.admin, "second-password")

    lead = create_user(engine, root, "lena", Role.lead, "lead-password")
    assert lead.display_name == "lena"  # defaults to the username
    annotator = create_user(engine, root, "anna", Role.annotator, "anna-password")
    for actor in (lead, annotator):
        with pytest.raises(PermissionDenied, match=f"User '{actor.username}' is {actor.role.value}; this needs admin"):
            create_user(engine, actor, f"by-{actor.username}", Role.annotator, "some-password")
    with read_session(engine) as session:
        names = session.execute(select(User.username).order_by(User.id)).scalars().all()
        events = session.execute(select(AuditEvent.action, AuditEvent.actor_id, AuditEvent.entity_id)
                                 .order_by(AuditEvent.id)).all()
    assert names == ["root", "lena", "anna"]
    assert events == [("user.create", None, root.id), ("user.create", root.id, lead.id),
                      ("user.create", root.id, annotator.id)]


def test_create_user_validation(engine: Engine, admin: User) -> None:
    with pytest.raises(Conflict, match="User 'root' already exists."):
        create_user(engine, admin, "root", Role.lead, "other-password")
    with pytest.raises(InputError) as short:
        create_user(engine, admin, "shorty", Role.lead, "1234567")
    assert short.value.field == "password" and "at least 8 characters" in str(short.value)
    for bad in ("", "   ", "u" * 121):
        with pytest.raises(InputError) as caught:
            create_user(engine, admin, bad, Role.lead, "long-enough")
        assert caught.value.field == "username"
    # an account without a password (an external annotator) is allowed; it cannot log in
    nopass = create_user(engine, admin, "external", Role.annotator, None)
    assert nopass.password_hash is None
    assert authenticate(engine, "external", "") is None
    with read_session(engine) as session:
        assert session.execute(select(func.count(User.id))).scalar_one() == 2


def test_authenticate(engine: Engine, admin: User, annotator: User) -> None:
    user = authenticate(engine, " anna ", "annotator-password")
    assert user is not None and (user.id, user.role) == (annotator.id, "annotator")
    assert authenticate(engine, "anna", "wrong-password") is None
    assert authenticate(engine, "anna", "") is None
    assert authenticate(engine, "nobody", "annotator-password") is None
    assert authenticate(engine, "ANNA", "annotator-password") is None  # usernames are exact

    with write_session(engine) as session:
        session.execute(update(User).where(User.id == annotator.id).values(active=False))
    assert authenticate(engine, "anna", "annotator-password") is None


def test_imported_annotators_cannot_log_in(engine: Engine, lead: User, tmp_path: Path) -> None:
    create_project(engine, lead, "P", labels=["a", "b"])
    path = tmp_path / "labels.csv"
    path.write_text("id,text,annotator,label\n1,x,rater7,a\n")
    import_table(engine, lead, open_table(path), ColumnMapping(id=["id"], text="text", annotator="annotator",
                                                               label="label"), "P")
    imported = get_user(engine, "rater7")
    assert (imported.imported, imported.password_hash, imported.role) == (True, None, "annotator")
    for attempt in ("", "rater7", "None", "null"):
        assert authenticate(engine, "rater7", attempt) is None
    # an imported account does not count as "the first account": bootstrapping is still refused
    with pytest.raises(PermissionDenied):
        create_user(engine, None, "sneaky", Role.admin, "sneaky-password")


def test_bootstrap_is_open_while_only_imported_accounts_exist(engine: Engine) -> None:
    with write_session(engine) as session:
        session.add(User(username="rater1", role=Role.annotator, imported=True))
    root = create_user(engine, None, "root", Role.admin, "root-password")
    assert root.role == Role.admin


def test_require_role_and_list_users(engine: Engine, admin: User, lead: User, annotator: User) -> None:
    assert require_role(lead, Role.lead, Role.admin) is lead
    with pytest.raises(PermissionDenied, match="You must be logged in with an active account."):
        require_role(None, Role.admin)
    with pytest.raises(PermissionDenied, match="User 'anna' is annotator; this needs lead or admin."):
        require_role(annotator, Role.lead, Role.admin)
    assert [u.username for u in list_users(engine, lead)] == ["anna", "lena", "root"]
    with pytest.raises(PermissionDenied):
        list_users(engine, annotator)
    assert get_user(engine, "lena").id == lead.id
    with pytest.raises(NotFound, match="No user 'ghost'."):
        get_user(engine, "ghost")


def test_set_password_is_for_admins_and_audited(engine, admin, lead, annotator) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from curation.access.accounts import authenticate, set_password
    from curation.db import read_session
    from curation.errors import InputError, PermissionDenied
    from curation.models import AuditEvent

    with pytest.raises(PermissionDenied):
        set_password(engine, lead, annotator.id, "lead-chosen-password")
    with pytest.raises(InputError, match="at least 8"):
        set_password(engine, admin, annotator.id, "short")
    set_password(engine, admin, annotator.id, "a-fresh-password")
    assert authenticate(engine, "anna", "a-fresh-password") is not None
    assert authenticate(engine, "anna", "annotator-password") is None
    with read_session(engine) as session:
        events = session.execute(select(AuditEvent).where(AuditEvent.action == "user.password")).scalars().all()
    assert [(e.actor_id, e.entity_id) for e in events] == [(admin.id, annotator.id)]
    assert "a-fresh-password" not in str(events[0].before) + str(events[0].after)
