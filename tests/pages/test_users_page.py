"""pages/users.py through AppTest: admins list, add and change accounts (audited); the last admin
stays; leads and annotators are refused."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from streamlit.testing.v1 import AppTest

from curation.access.accounts import authenticate, get_user
from curation.db import read_session
from curation.models import AuditEvent, Role, User
from tests.curation.test_review_queue import fast_passwords
from tests.pages.helpers import REPO, TIMEOUT, by_label, logged_in, no_exception, values
from ui.session import USER_KEY

__all__ = ["fast_passwords"]


def _users_page() -> AppTest:
    at = logged_in("root", "root-password")
    at.switch_page("pages/users.py").run()
    no_exception(at)
    assert values(at.title) == ["Users"]
    return at


def test_admin_adds_a_user_and_changes_roles(engine: Engine, admin: User, lead: User,
                                             annotator: User) -> None:
    at = _users_page()
    assert at.dataframe[0].value[["username", "role", "active"]].values.tolist() == [
        ["anna", "annotator", True], ["lena", "lead", True], ["root", "admin", True]]

    at.text_input[-3].input("maria")
    at.text_input[-1].input("short")
    by_label(at.button, "Add user").click().run()
    assert values(at.error) == ["field 'password': a password needs at least 8 characters"]
    at.text_input[-3].input("maria")
    at.selectbox[-1].select("lead")
    at.text_input[-1].input("maria-password")
    by_label(at.button, "Add user").click().run()
    no_exception(at)
    assert values(at.success) == ["Added maria (lead)."]
    assert authenticate(engine, "maria", "maria-password").role == Role.lead

    anna = get_user(engine, "anna")
    at.selectbox(key="users.pick").select(anna.id).run()
    at.selectbox[-2].select("lead")
    at.checkbox[0].uncheck()
    by_label(at.button, "Apply").click().run()
    no_exception(at)
    anna = get_user(engine, "anna")
    assert (anna.role, anna.active) == (Role.lead, False)
    with read_session(engine) as session:
        actions = session.execute(select(AuditEvent.action).where(AuditEvent.entity_id == anna.id,
                                                                  AuditEvent.entity == "user")
                                  .order_by(AuditEvent.id)).scalars().all()
    assert actions == ["user.create", "user.role", "user.active"]


def test_a_failed_add_keeps_the_form_and_a_success_clears_it(engine: Engine, admin: User, lead: User) -> None:
    at = _users_page()
    by_label(at.text_input, "Username").input("lena")  # taken
    by_label(at.text_input, "Display name (optional)").input("Lena Two")
    at.selectbox[-1].select("lead")  # the add form's role
    by_label(at.text_input, "Password (at least 8 characters)").input("lena2-password")
    by_label(at.button, "Add user").click().run()
    no_exception(at)
    assert values(at.error) == ["User 'lena' already exists."]
    assert [by_label(at.text_input, label).value for label in
            ("Username", "Display name (optional)", "Password (at least 8 characters)")] == \
        ["lena", "Lena Two", "lena2-password"]
    assert at.selectbox[-1].value == "lead"
    by_label(at.text_input, "Username").input("lena2")
    by_label(at.button, "Add user").click().run()
    no_exception(at)
    assert values(at.success) == ["Added lena2 (lead)."]
    assert [by_label(at.text_input, label).value for label in
            ("Username", "Display name (optional)", "Password (at least 8 characters)")] == ["", "", ""]
    assert at.selectbox[-1].value == at.selectbox[-1].options[0]  # back to the first role


def test_admin_resets_a_password_audited(engine: Engine, admin: User, annotator: User) -> None:
    at = _users_page()
    at.selectbox(key="users.pick").select(annotator.id).run()
    field = by_label(at.text_input, "New password for this account (at least 8 characters)")
    field.input("short")
    by_label(at.button, "Set password").click().run()
    assert values(at.error) == ["field 'password': a password needs at least 8 characters"]
    assert authenticate(engine, "anna", "annotator-password") is not None
    by_label(at.text_input, "New password for this account (at least 8 characters)").input("anna-new-password")
    by_label(at.button, "Set password").click().run()
    no_exception(at)
    assert values(at.success) == ["Set a new password for anna."]
    assert authenticate(engine, "anna", "annotator-password") is None
    assert authenticate(engine, "anna", "anna-new-password") is not None
    with read_session(engine) as session:
        event = session.execute(select(AuditEvent).where(AuditEvent.action == "user.password")).scalars().one()
    assert (event.entity_id, event.actor_id) == (annotator.id, admin.id)
    assert "anna-new-password" not in str(event.after) and "argon2" not in str(event.after)


def test_the_last_admin_cannot_demote_themselves(engine: Engine, admin: User) -> None:
    at = _users_page()
    at.selectbox(key="users.pick").select(admin.id).run()
    at.selectbox[-2].select("annotator")
    by_label(at.button, "Apply").click().run()
    assert values(at.error) == ["'root' is the last active admin; make another admin first."]
    assert get_user(engine, "root").role == Role.admin


@pytest.mark.parametrize("who", ["lead", "annotator"])
def test_others_are_refused(engine: Engine, lead: User, annotator: User, who: str) -> None:
    user = {"lead": lead, "annotator": annotator}[who]
    at = AppTest.from_file(str(REPO / "pages/users.py"), default_timeout=TIMEOUT)
    at.session_state[USER_KEY] = user.id
    at.run()
    assert values(at.error) == [f"User '{user.username}' is {who}; this needs admin."]
    assert not at.dataframe
