"""Entry point: `streamlit run app.py`. Login, then navigation over the pages the user's role may use."""

import streamlit as st

from curation.models import Role
from ui.session import (
    current_user,
    log_in,
    log_out,
    oidc_login_button,
    project_picker,
    session_cookie_script,
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


def pages_for(role: Role) -> list[st.Page]:
    """The pages `role` may use, in navigation order (Projects first, the default)."""
    leads = role in (Role.lead, Role.admin)
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
    if role == Role.admin:
        pages.append(st.Page("pages/users.py", title="Users", icon="👥"))
    return pages


def signed_out_pages() -> list[st.Page]:
    """The login page, also under the address of every page of the app (hidden from the menu), so a
    link such as `/review?item=5` opened while signed out shows the login form at that address.

    Why: st.navigation answers a URL path it does not list with "Page not found", a modal dialog over
    the form that left it inert, and moved the browser to `/`. Listed, the path keeps the URL and
    its query parameters, and the rerun after the log in resolves the same path (a page's id is
    the hash of its URL path) in the signed-in navigation: the linked page opens."""
    login = st.Page(login_page, title="Log in", icon="🔑", default=True)
    links = [st.Page(login_page, title="Log in", icon="🔑", url_path=page.url_path, visibility="hidden")
             for page in pages_for(Role.admin) if page.url_path]  # the default page lives at "/"
    return [login, *links]


def not_for_your_role() -> None:
    st.title("Not available")
    user = current_user()
    role = user.role if user is not None else "none"
    st.error(f"This page is not open to your role ({role}). Your pages are in the menu.")


def signed_in_pages(role: Role) -> list[st.Page]:
    """The pages of `role`, plus (hidden) a refusal at the address of every other page, so a link to
    a lead's page sent to an annotator says so instead of Streamlit's "Page not found" dialog."""
    pages = pages_for(role)
    own = {page.url_path for page in pages}
    return pages + [st.Page(not_for_your_role, title="Not available", url_path=page.url_path, visibility="hidden")
                    for page in pages_for(Role.admin) if page.url_path not in own]


user = current_user()
session_cookie_script()
if user is None:
    st.navigation(signed_out_pages()).run()
else:
    pages = signed_in_pages(user.role)
    with st.sidebar:
        st.write(f"**{user.display_name or user.username}** · {user.role}")
        logging_out = st.button("Log out")
    project_picker()
    navigation = st.navigation(pages, expanded=True)  # every page listed: no "View more" fold past ten
    if logging_out:
        log_out()
        # To the front page, without the query: the login form stays at a page's address only for a
        # link opened while signed out, not for the next person at this browser.
        st.switch_page(pages[0])
    navigation.run()
