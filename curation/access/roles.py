"""Role checks every core function runs first (require_role) and the role sets it takes."""

from __future__ import annotations

from curation.errors import PermissionDenied
from curation.models import Role, User, UserKind


def require_role(user: User | None, *roles: Role) -> User:
    """Return `user` when it is active and has one of `roles`; raise PermissionDenied otherwise."""
    if user is None or not user.active:
        raise PermissionDenied("You must be logged in with an active account.")
    if _is_source_account(user):
        raise PermissionDenied(f"'{user.username}' is a source account: it carries imported labels and "
                               "cannot log in or act.")
    if user.role not in roles:
        allowed = " or ".join(r.value for r in roles)
        raise PermissionDenied(f"User '{user.username}' is {Role(user.role).value}; this needs {allowed}.")
    return user


LEADS = (Role.lead, Role.admin)


def _is_source_account(user: User) -> bool:
    """Source accounts (issue 12) hold imported votes; they never log in, whatever their password."""
    return (getattr(user, "kind", None) or UserKind.person) == UserKind.source
