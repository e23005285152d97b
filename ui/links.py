"""Links that open an item, a run or a version: `?item=123` (Review, Adjudication), `?run=7` (Runs),
`?version=3` (Versions). A page opens what its URL names once per distinct value (so a widget can
change it afterwards), and writes what it shows back into the URL, so a reload keeps it and the
address bar is a link to send."""

from __future__ import annotations

import streamlit as st

_SEEN = "links.seen"  # {(page, name): value already opened}


def requested_id(page: str, name: str) -> int | None:
    """The id `?name=` asks `page` to open, the first time this value is seen in this session;
    None when absent, not a number, or already opened."""
    raw = st.query_params.get(name)
    if raw is None or not str(raw).strip().isdigit():
        return None
    value = int(str(raw).strip())
    seen = st.session_state.setdefault(_SEEN, {})
    if seen.get((page, name)) == value:
        return None
    seen[(page, name)] = value
    return value


def show_in_url(page: str, name: str, value: int | None) -> None:
    """Put what the page shows into the URL (and remember it as opened, so it is not re-requested)."""
    st.session_state.setdefault(_SEEN, {})[(page, name)] = value
    if value is None:
        st.query_params.pop(name, None)
    elif st.query_params.get(name) != str(value):
        st.query_params[name] = str(value)


def link_caption(name: str, value: int, what: str) -> None:
    """A caption with the link that opens this `what` on this page (for sending to a colleague)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(st.context.url or "")
        base = f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else ""
    except Exception:  # noqa: BLE001 - no client context (tests)
        base = ""
    st.caption(f"Link to this {what}: `{base}?{name}={value}`")
