"""Entry point: `streamlit run app.py`. Login, then navigation over the pages the user's role may use."""

import streamlit as st

from curation.models import Role
from ui.session import (
    current_user,
    log_in,
    log_out,
    oidc_login_button,
    project_picker,
    remember_requested_page,
    session_cookie_script,
    switch_to_requested_page,
)

st.set_page_config(page_title="LoRA Curation Workbench", page_icon="🧪", layout="wide")


def login_page() -> None:
    st.title("LoRA Curation Workbench")
    st.caption("Curate the data a LoRA adapter learns from: review, agree, de-duplicate, approve, train.")
    with st.form("login"):
        username = st.text_input("Username")
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Log in", type="primary")
    if submitted:
        if log_in(username, password) is None:
            st.error("Unknown username or wrong password.")
        else:
            st.rerun()
    oidc_login_button()


user = current_user()
session_cookie_script()
if user is None:
    remember_requested_page()  # a link to a page or an item opens it after the log in
    st.navigation([st.Page(login_page, title="Log in", icon="🔑")]).run()
else:
    leads = user.role in (Role.lead, Role.admin)
    pages = [st.Page("pages/projects.py", title="Projects", icon="📁", default=True)]
    if leads:
        pages += [
            st.Page("pages/import_data.py", title="Import", icon="📥"),
            st.Page("pages/browse.py", title="Data browser", icon="🔎"),
            st.Page("pages/agreement.py", title="Agreement", icon="📊"),
            st.Page("pages/versions.py", title="Versions", icon="🏷️"),
            st.Page("pages/test_set.py", title="Test set", icon="🧪"),
        ]
    pages.append(st.Page("pages/review.py", title="Review", icon="✍️"))
    pages.append(st.Page("pages/preference.py", title="Preference", icon="🆚"))  # blind judging (issue 11)
    if leads:
        pages += [
            st.Page("pages/adjudicate.py", title="Adjudication", icon="⚖️"),
            st.Page("pages/audit.py", title="Audit", icon="📜"),
        ]
        pages += [  # embedding views (issue 5)
            st.Page("pages/duplicates.py", title="Duplicates", icon="👯"),
            st.Page("pages/diversity.py", title="Diversity", icon="🗺️"),
            st.Page("pages/label_issues.py", title="Label issues", icon="🚩"),
            st.Page("pages/leakage.py", title="Split leakage", icon="🚰"),
        ]
        pages += [  # training (issue 7)
            st.Page("pages/train.py", title="Train", icon="🏋️"),
            st.Page("pages/runs.py", title="Runs", icon="📈"),
            st.Page("pages/playground.py", title="Playground", icon="🎮"),
        ]
    if user.role == Role.admin:
        pages.append(st.Page("pages/users.py", title="Users", icon="👥"))
    with st.sidebar:
        st.write(f"**{user.display_name or user.username}** · {user.role}")
        if st.button("Log out"):
            log_out()
            st.rerun()
    project_picker()
    navigation = st.navigation(pages, expanded=True)
    switch_to_requested_page(pages)
    navigation.run()  # every page listed: no "View more" fold past ten
