"""curation/sessions.py: signed, expiring, revocable session tokens; curation/oidc.py: identity
provider claims mapped to accounts and roles."""

from __future__ import annotations

import stat
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import select

from curation.access import sessions
from curation.access.accounts import set_active, set_password
from curation.access.oidc import account_for_claims, role_from_claims
from curation.db import read_session
from curation.errors import PermissionDenied
from curation.models import AuditEvent, LoginSession, Role, User
from curation.settings import Settings, get_settings
from tests.conftest import BOTH_BACKENDS


@BOTH_BACKENDS
def test_a_token_signs_its_user_in_until_log_out_revokes_it(engine: Engine, lead: User) -> None:
    token = sessions.issue_session(engine, lead)
    assert lead.id is not None and sessions.user_for_token(engine, token).id == lead.id  # type: ignore[union-attr]
    assert sessions.revoke_session(engine, token) is True
    assert sessions.user_for_token(engine, token) is None
    with read_session(engine) as session:
        row = session.exec(select(LoginSession)).one()
    assert row.revoked_at is not None and row.user_id == lead.id
    assert token.split(".")[1] not in row.token_hash  # only a hash of the secret is stored


@BOTH_BACKENDS
def test_deactivating_an_account_revokes_every_session_of_it(engine: Engine, admin: User, lead: User) -> None:
    first, second = sessions.issue_session(engine, lead), sessions.issue_session(engine, lead)
    other = sessions.issue_session(engine, admin)
    set_active(engine, admin, lead.id, False)  # type: ignore[arg-type]
    set_active(engine, admin, lead.id, True)  # type: ignore[arg-type]  # activating again does not revive them
    assert sessions.user_for_token(engine, first) is None and sessions.user_for_token(engine, second) is None
    assert sessions.user_for_token(engine, other).username == "root"  # type: ignore[union-attr]


def test_an_admin_resetting_a_password_ends_the_accounts_sessions(engine: Engine, admin: User, lead: User) -> None:
    mine, other = sessions.issue_session(engine, lead), sessions.issue_session(engine, admin)
    set_password(engine, admin, lead.id, "a brand new secret")  # type: ignore[arg-type]
    assert sessions.user_for_token(engine, mine) is None
    assert sessions.user_for_token(engine, other) is not None


def test_a_deactivated_account_is_refused_even_before_revocation(engine: Engine, lead: User) -> None:
    token = sessions.issue_session(engine, lead)
    with engine.begin() as conn:  # deactivated behind the core's back: the account check still holds
        conn.execute(update(User).where(User.id == lead.id).values(active=False))
    assert sessions.user_for_token(engine, token) is None


def test_altered_forged_and_expired_tokens_are_refused(engine: Engine, lead: User) -> None:
    token = sessions.issue_session(engine, lead)
    session_id, secret, expiry, signature = token.split(".")
    later = str(int(expiry) + 10 * 86400)
    assert sessions.user_for_token(engine, f"{session_id}.{secret}.{later}.{signature}") is None  # extended
    assert sessions.user_for_token(engine, f"{session_id}.{secret[::-1]}.{expiry}.{signature}") is None
    assert sessions.user_for_token(engine, f"{int(session_id) + 1}.{secret}.{expiry}.{signature}") is None
    for junk in ("", "abc", "1.2.3", None, token + ".x"):
        assert sessions.user_for_token(engine, junk) is None
    assert sessions.revoke_session(engine, "1.2.3.4") is False
    expired = sessions.issue_session(engine, lead, hours=-1)
    assert sessions.user_for_token(engine, expired) is None


def test_a_token_signed_with_another_key_is_refused(engine: Engine, lead: User,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    token = sessions.issue_session(engine, lead)
    monkeypatch.setenv("SESSION_SECRET", "another-server-key")
    get_settings.cache_clear()
    assert sessions.user_for_token(engine, token) is None
    assert sessions.user_for_token(engine, sessions.issue_session(engine, lead)) is not None


def test_the_key_file_is_created_once_and_private(engine: Engine, lead: User) -> None:
    key = sessions.signing_key()
    path = get_settings().data_dir / "session_secret"
    assert path.read_bytes().strip() == key and len(key) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sessions.signing_key() == key


def _settings(**values: object) -> Settings:
    return Settings(**values)  # type: ignore[arg-type]


def test_oidc_maps_an_existing_account_by_email(engine: Engine, admin: User) -> None:
    from curation.access.accounts import create_user

    maria = create_user(engine, admin, "maria@example.org", Role.lead, "maria-password")
    user = account_for_claims(engine, {"email": "maria@example.org", "email_verified": True, "sub": "x"},
                              _settings())
    assert user.id == maria.id and user.role == Role.lead  # no group mapping: the admin's role stays


def test_oidc_refuses_unknown_unverified_deactivated_and_imported(engine: Engine, admin: User) -> None:
    from curation.access.accounts import create_user

    with pytest.raises(PermissionDenied, match="No account 'new@example.org' here yet"):
        account_for_claims(engine, {"email": "new@example.org"}, _settings())
    with pytest.raises(PermissionDenied, match="no 'email' claim"):
        account_for_claims(engine, {"sub": "abc"}, _settings())
    gone = create_user(engine, admin, "gone@example.org", Role.annotator, "gone-password")
    set_active(engine, admin, gone.id, False)  # type: ignore[arg-type]
    with pytest.raises(PermissionDenied, match="deactivated"):
        account_for_claims(engine, {"email": "gone@example.org"}, _settings())
    with pytest.raises(PermissionDenied, match="not verified"):
        account_for_claims(engine, {"email": "root", "email_verified": False}, _settings())
    from curation.db import write_session

    with write_session(engine) as session:
        session.add(User(username="ext@example.org", role=Role.annotator, imported=True))
    with pytest.raises(PermissionDenied, match="imported annotator record"):
        account_for_claims(engine, {"email": "ext@example.org"}, _settings())


def test_oidc_creates_accounts_and_sets_roles_from_groups_when_configured(engine: Engine, admin: User) -> None:
    settings = _settings(oidc_create_accounts=True, oidc_admin_groups="it-admins",
                         oidc_lead_groups="curation-leads, ml-leads")
    assert role_from_claims({"groups": ["ml-leads"]}, settings) is Role.lead
    assert role_from_claims({"groups": "it-admins other"}, settings) is Role.admin
    assert role_from_claims({}, settings) is Role.annotator
    assert role_from_claims({"groups": ["ml-leads"]}, _settings()) is None
    created = account_for_claims(engine, {"email": "kim@example.org", "name": "Kim", "groups": ["ml-leads"]},
                                 settings)
    assert (created.username, created.role, created.password_hash, created.display_name) == (
        "kim@example.org", Role.lead, None, "Kim")
    again = account_for_claims(engine, {"email": "kim@example.org", "groups": []}, settings)
    assert again.id == created.id and again.role == Role.annotator  # left the lead group: demoted
    with read_session(engine) as session:
        actions = [(e.action, (e.after or {}).get("via")) for e in session.exec(
            select(AuditEvent).where(AuditEvent.entity_id == created.id).order_by(AuditEvent.id))]
    assert actions == [("user.create", "oidc"), ("user.role", "oidc groups")]
    # The last active admin keeps the role whatever the groups claim says.
    root = account_for_claims(engine, {"email": "root", "groups": []}, _settings(oidc_lead_groups="x"))
    assert root.role == Role.admin


def test_session_tokens_expire_after_the_configured_hours(engine: Engine, lead: User,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_HOURS", "2")
    get_settings.cache_clear()
    sessions.issue_session(engine, lead)
    with read_session(engine) as session:
        row = session.exec(select(LoginSession)).one()
    created, expires = sessions._aware(row.created_at), sessions._aware(row.expires_at)
    assert abs((expires - created) - timedelta(hours=2)) < timedelta(seconds=5)
