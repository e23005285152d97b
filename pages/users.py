"""Users (admins): the accounts, adding one, changing a role, resetting a password, and deactivating
an account. Every change is audited; the last active admin cannot be demoted or deactivated."""

import pandas as pd
import streamlit as st

from curation.access.accounts import create_user, list_users, set_active, set_password, set_role
from curation.errors import CurationError
from curation.models import Role
from ui.page import open_page
from ui.session import flash, show_flash
from ui.widgets import escape_markdown, show_error

user, engine = open_page("Users", Role.admin)
show_flash()

users = list_users(engine, user)
st.dataframe(pd.DataFrame([{
    "username": u.username,
    "name": u.display_name,
    "role": Role(u.role).value,
    "active": u.active,
    "can log in": bool(u.password_hash),
    "created": u.created_at,
} for u in users]), hide_index=True, width="stretch")

roles = [r.value for r in Role]
st.subheader("Change an account")
by_id = {u.id: u for u in users}
chosen = st.selectbox("Account", list(by_id), format_func=lambda i: by_id[i].username, key="users.pick")
account = by_id[chosen]
with st.form(f"users.change.{account.id}"):
    c1, c2 = st.columns(2)
    role = c1.selectbox("Role", roles, index=roles.index(Role(account.role).value))
    active = c2.checkbox("Active (can log in)", account.active)
    if st.form_submit_button("Apply"):
        try:
            if role != Role(account.role).value:
                set_role(engine, user, account.id, Role(role))
            if active != account.active:
                set_active(engine, user, account.id, active)
            flash(escape_markdown(f"Updated {account.username}."))
            st.rerun()
        except CurationError as error:
            show_error(error)
with st.form(f"users.password.{account.id}", clear_on_submit=True):
    new_password = st.text_input("New password for this account (at least 8 characters)", type="password")
    if st.form_submit_button("Set password"):
        try:
            set_password(engine, user, account.id, new_password)
            flash(escape_markdown(f"Set a new password for {account.username}."))
            st.rerun()
        except CurationError as error:
            show_error(error)

st.subheader("Add an account")
# The fields keep what was typed when adding fails (a taken name, a short password), and are
# emptied only once the account exists.
ADD_FIELDS = ("users.add.username", "users.add.display_name", "users.add.role", "users.add.password")
with st.form("users.add", clear_on_submit=False):
    c1, c2 = st.columns(2)
    username = c1.text_input("Username", key=ADD_FIELDS[0])
    display_name = c2.text_input("Display name (optional)", key=ADD_FIELDS[1])
    c3, c4 = st.columns(2)
    new_role = c3.selectbox("Role", roles, key=ADD_FIELDS[2])
    password = c4.text_input("Password (at least 8 characters)", type="password", key=ADD_FIELDS[3])
    if st.form_submit_button("Add user", type="primary"):
        try:
            created = create_user(engine, user, username, Role(new_role), password or "", display_name)
            flash(escape_markdown(f"Added {created.username} ({new_role})."))
            for field_key in ADD_FIELDS:
                st.session_state.pop(field_key, None)
            st.rerun()
        except CurationError as error:
            show_error(error)
