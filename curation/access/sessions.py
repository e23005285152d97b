"""Signed, expiring, revocable session tokens: what keeps a user signed in across a browser reload.

A token is `<session id>.<secret>.<expiry>.<signature>`:
- `secret`: 32 random bytes (URL-safe base64); only its SHA-256 is stored, in `LoginSession.token_hash`;
- `expiry`: Unix seconds; the row's `expires_at` says the same;
- `signature`: HMAC-SHA256 over the first three parts with the server key (`SESSION_SECRET`, else a
  random key created once in `DATA_DIR/session_secret`, readable by its owner only).

A token is accepted when its signature verifies (so a forged or altered token is rejected before
the database is asked), it has not expired, its row exists, is not revoked and holds the same secret,
and its account is active. Log out revokes the row; deactivating an account revokes all of its rows
in the same transaction (`revoke_user_sessions`), so a stolen token dies with either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from curation.db import read_session, write_session
from curation.models import LoginSession, User, utcnow
from curation.settings import get_settings

COOKIE_NAME = "lcw_session"


def _key_file() -> Path:
    return get_settings().data_dir / "session_secret"


def signing_key() -> bytes:
    """The HMAC key: SESSION_SECRET when set, else the key file under DATA_DIR (created on first use)."""
    configured = get_settings().session_secret
    if configured:
        return configured.encode()
    path = _key_file()
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    try:  # O_EXCL: two servers starting at once agree on the first key written
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def _sign(payload: str) -> str:
    digest = hmac.new(signing_key(), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite drops the zone


def issue_session(engine: Engine, user: User, method: str = "password", hours: float | None = None) -> str:
    """A new session token for an active `user` (just authenticated by password or OpenID Connect)."""
    if user.id is None or not user.active:
        raise ValueError("a session is only issued to an active, saved account")
    secret = secrets.token_urlsafe(32)
    expires = utcnow() + timedelta(hours=hours if hours is not None else get_settings().session_hours)
    with write_session(engine) as session:
        row = LoginSession(user_id=user.id, token_hash=_hash(secret), method=method, expires_at=expires)
        session.add(row)
        session.flush()
        session_id = row.id
    payload = f"{session_id}.{secret}.{int(expires.timestamp())}"
    return f"{payload}.{_sign(payload)}"


def _parse(token: str) -> tuple[int, str, int] | None:
    """(session id, secret, expiry) of a well-formed token with a valid signature, else None."""
    parts = (token or "").strip().split(".")
    if len(parts) != 4:
        return None
    session_id, secret, expiry, signature = parts
    if not hmac.compare_digest(_sign(f"{session_id}.{secret}.{expiry}"), signature):
        return None
    try:
        return int(session_id), secret, int(expiry)
    except ValueError:
        return None


def user_for_token(engine: Engine, token: str | None) -> User | None:
    """The active account a valid, unexpired, unrevoked token belongs to; None for anything else."""
    parsed = _parse(token or "")
    if parsed is None:
        return None
    session_id, secret, expiry = parsed
    now = utcnow()
    if expiry <= now.timestamp():
        return None
    with read_session(engine) as session:
        row = session.get(LoginSession, session_id)
        if row is None or row.revoked_at is not None or _aware(row.expires_at) <= now:
            return None
        if not hmac.compare_digest(row.token_hash, _hash(secret)):
            return None
        user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    return user


def revoke_session(engine: Engine, token: str | None) -> bool:
    """Revoke the session of `token` (log out). False when the token was not a valid one."""
    parsed = _parse(token or "")
    if parsed is None:
        return False
    session_id, secret, _ = parsed
    with write_session(engine) as session:
        row = session.get(LoginSession, session_id)
        if row is None or not hmac.compare_digest(row.token_hash, _hash(secret)):
            return False
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            session.add(row)
    return True


def revoke_user_sessions(session: Session, user_id: int) -> int:
    """Revoke every open session of an account, inside the caller's transaction (deactivation,
    password reset). Returns how many were open."""
    result = session.execute(
        update(LoginSession)
        .where(LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None))  # type: ignore[union-attr]
        .values(revoked_at=utcnow())
    )
    return int(result.rowcount or 0)
