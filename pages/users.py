"""Users (admins): the accounts, adding one, and changing a role or deactivating an account.
Every change is audited; the last active admin cannot be demoted or deactivated."""

import pandas as pd
import streamlit as st

from curation.auth import create_user, list_users, set_active, set_role
from curation.errors import CurationError
from curation.models import Role
from ui.session import flash, get_engine, require_user, show_flash
from ui.widgets import show_error

user = require_user(Role.admin)
engine = get_engine()
st.title("Users")
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
            flash(f"Updated {account.username}.")
            st.rerun()
        except CurationError as error:
            show_error(error)

st.subheader("Add an account")
with st.form("users.add", clear_on_submit=True):
    c1, c2 = st.columns(2)
    username = c1.text_input("Username")
    display_name = c2.text_input("Display name (optional)")
    c3, c4 = st.columns(2)
    new_role = c3.selectbox("Role", roles)
    password = c4.text_input("Password (at least 8 characters)", type="password")
    if st.form_submit_button("Add user", type="primary"):
        try:
            created = create_user(engine, user, username, Role(new_role), password or "", display_name)
            flash(f"Added {created.username} ({new_role}).")
            st.rerun()
        except CurationError as error:
            show_error(error)
