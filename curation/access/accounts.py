"""Accounts, password hashing (argon2) and role checks.

Role checks live here and every core function that reads or writes calls them, so a page that
forgets to hide a button still cannot do what the role forbids.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from curation.access import audit
from curation.access.roles import LEADS, _is_source_account, require_role
from curation.access.sessions import revoke_user_sessions
from curation.db import read_session, write_session
from curation.errors import Conflict, InputError, NotFound, PermissionDenied
from curation.lookup import get_or_not_found
from curation.models import Role, User

_hasher = PasswordHasher()

MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def authenticate(engine: Engine, username: str, password: str) -> User | None:
    """The active user with this username and password, or None (same answer for any failure)."""
    with read_session(engine) as session:
        user = session.exec(select(User).where(User.username == username.strip())).first()
    if user is None or not user.active or _is_source_account(user) \
            or not verify_password(user.password_hash, password):
        return None
    return user


def create_user(
    engine: Engine,
    actor: User | None,
    username: str,
    role: Role,
    password: str | None,
    display_name: str = "",
) -> User:
    """Create an account. `actor` must be an admin, except for the first account of an empty database
    (the bootstrap admin from the environment or the CLI), which is created with actor None."""
    username = username.strip()
    if not username or len(username) > 120:
        raise InputError("a username must be 1-120 characters", field="username")
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters", field="password")
    with write_session(engine) as session:
        if actor is None:
            if session.exec(select(User.id).where(User.password_hash.is_not(None))).first() is not None:
                raise PermissionDenied("Only an admin can add users once the first account exists.")
            if Role(role) is not Role.admin:
                # Otherwise nobody could ever add accounts: only admins can, and there would be none.
                raise InputError("the first account must be an admin", field="role")
        else:
            require_role(actor, Role.admin)
        if session.exec(select(User.id).where(User.username == username)).first() is not None:
            raise Conflict(f"User '{username}' already exists.")
        user = User(
            username=username,
            display_name=display_name or username,
            role=role,
            password_hash=hash_password(password) if password else None,
        )
        session.add(user)
        session.flush()
        audit.record(session, actor, "user.create", "user", user.id, after={"username": username, "role": role.value})
    return user


def get_user(engine: Engine, username: str) -> User:
    with read_session(engine) as session:
        user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound(f"No user '{username}'.")
    return user


def list_users(engine: Engine, actor: User) -> list[User]:
    require_role(actor, *LEADS)
    with read_session(engine) as session:
        return list(session.exec(select(User).order_by(User.username)))


def set_role(engine: Engine, actor: User, user_id: int, role: Role) -> User:
    """Change an account's role (admins). The last active admin cannot lose the role. Audited."""
    require_role(actor, Role.admin)
    role = Role(role)
    with write_session(engine) as session:
        user = _user_by_id(session, user_id)
        before = Role(user.role).value
        if before == role.value:
            return user
        if user.role == Role.admin and user.active:
            _keep_an_admin(session, user)
        user.role = role
        session.add(user)
        audit.record(session, actor, "user.role", "user", user.id, before={"username": user.username, "role": before},
                     after={"username": user.username, "role": role.value})
    return user


def set_active(engine: Engine, actor: User, user_id: int, active: bool) -> User:
    """Deactivate an account (it can no longer log in; its labels stay) or activate it again (admins).
    The last active admin cannot be deactivated. Audited."""
    require_role(actor, Role.admin)
    with write_session(engine) as session:
        user = _user_by_id(session, user_id)
        if user.active == active:
            return user
        if not active and user.role == Role.admin:
            _keep_an_admin(session, user)
        user.active = active
        session.add(user)
        if not active:  # a deactivated account's open browsers lose their sign-in at once
            revoke_user_sessions(session, user.id)
        audit.record(session, actor, "user.active", "user", user.id,
                     before={"username": user.username, "active": not active},
                     after={"username": user.username, "active": active})
    return user


def set_password(engine: Engine, actor: User, user_id: int, password: str) -> User:
    """Set a new password for an account (admins), e.g. for someone who forgot theirs. At least
    MIN_PASSWORD_LENGTH characters. Audited (who and whose, never the password or its hash); the
    account's open sessions end with the old password."""
    require_role(actor, Role.admin)
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise InputError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters", field="password")
    with write_session(engine) as session:
        user = _user_by_id(session, user_id)
        had_login = bool(user.password_hash)
        user.password_hash = hash_password(password)
        session.add(user)
        revoke_user_sessions(session, user.id)
        audit.record(session, actor, "user.password", "user", user.id,
                     before={"username": user.username, "could_log_in": had_login},
                     after={"username": user.username, "password": "reset by an admin"})
    return user


def _user_by_id(session: Session, user_id: int) -> User:
    return get_or_not_found(session, User, user_id)


def _keep_an_admin(session: Session, leaving: User) -> None:
    others = session.exec(select(User.id).where(User.role == Role.admin.value, User.active.is_(True),
                                                User.id != leaving.id).with_for_update()).first()
    if others is None:
        raise Conflict(f"'{leaving.username}' is the last active admin; make another admin first.")
