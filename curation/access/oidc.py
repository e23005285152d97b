"""OpenID Connect sign-in (Streamlit's `st.login`) mapped to the workbench's accounts and roles.

The identity provider proves who the person is; the workbench decides what they may do:
- the account is the one whose username equals the claim `OIDC_USERNAME_CLAIM` (default `email`);
- an unknown person gets an account only with `OIDC_CREATE_ACCOUNTS=true` (audited, no password, so
  they can only sign in through the provider); otherwise an admin adds it first;
- with `OIDC_ADMIN_GROUPS` / `OIDC_LEAD_GROUPS` set, the groups claim (`OIDC_GROUPS_CLAIM`) sets the
  role at every sign-in (audited when it changes; the last active admin keeps the role); without
  them, roles stay as admins set them on the Users page;
- deactivated accounts and accounts created by an import (annotators of an external file) cannot
  sign in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select

from curation.access import audit
from curation.access.accounts import _keep_an_admin
from curation.db import write_session
from curation.errors import Conflict, PermissionDenied
from curation.models import Role, User
from curation.settings import Settings, get_settings


def _groups(claims: Mapping[str, Any], claim: str) -> set[str]:
    value = claims.get(claim)
    if isinstance(value, str):
        return {part.strip() for part in value.replace(",", " ").split() if part.strip()}
    if isinstance(value, (list, tuple, set)):
        return {str(v) for v in value}
    return set()


def _split(text: str) -> set[str]:
    return {part.strip() for part in text.split(",") if part.strip()}


def role_from_claims(claims: Mapping[str, Any], settings: Settings) -> Role | None:
    """The role the groups claim gives, or None when no group mapping is configured."""
    admins, leads = _split(settings.oidc_admin_groups), _split(settings.oidc_lead_groups)
    if not admins and not leads:
        return None
    groups = _groups(claims, settings.oidc_groups_claim)
    if groups & admins:
        return Role.admin
    if groups & leads:
        return Role.lead
    return Role.annotator


def account_for_claims(engine: Engine, claims: Mapping[str, Any], settings: Settings | None = None) -> User:
    """The active account a signed-in identity maps to (created or re-roled as configured).
    Raises PermissionDenied, with a message for the person, when there is none they may use."""
    settings = settings or get_settings()
    name = str(claims.get(settings.oidc_username_claim) or "").strip()
    if not name:
        raise PermissionDenied(f"The identity provider sent no '{settings.oidc_username_claim}' claim to name "
                               "your account.")
    if settings.oidc_username_claim == "email" and claims.get("email_verified") is False:
        raise PermissionDenied(f"The identity provider has not verified the address {name}.")
    role = role_from_claims(claims, settings)
    with write_session(engine) as session:
        user = session.exec(select(User).where(User.username == name)).first()
        if user is None:
            if not settings.oidc_create_accounts:
                raise PermissionDenied(f"No account '{name}' here yet: ask an admin to add it.")
            user = User(username=name, display_name=str(claims.get("name") or name), role=role or Role.annotator,
                        password_hash=None)
            session.add(user)
            session.flush()
            audit.record(session, None, "user.create", "user", user.id,
                         after={"username": name, "role": Role(user.role).value, "via": "oidc"})
            return user
        if user.imported:
            raise PermissionDenied(f"'{name}' is an imported annotator record, not an account that can sign in.")
        if not user.active:
            raise PermissionDenied(f"The account '{name}' is deactivated.")
        if role is not None and Role(user.role) is not role:
            before = Role(user.role).value
            try:
                if Role(user.role) is Role.admin:
                    _keep_an_admin(session, user)
            except Conflict:
                return user  # the last active admin keeps the role whatever the groups say
            user.role = role
            session.add(user)
            audit.record(session, None, "user.role", "user", user.id, before={"username": name, "role": before},
                         after={"username": name, "role": role.value, "via": "oidc groups"})
    return user
