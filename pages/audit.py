"""Audit (leads): every recorded change, filtered by project, action, person, item and date, and
one item's whole history."""

import json
from datetime import datetime, time, timedelta, timezone

import pandas as pd
import streamlit as st

from curation.access.accounts import list_users
from curation.access.audit import EventFilter, count_events, event_actions, example_history, query_events
from curation.models import Role
from ui.page import open_page
from ui.session import current_project

PAGE_SIZE = 200

user, engine = open_page("Audit", Role.lead, Role.admin)
project = current_project(required=False)
key = "audit"
with st.container(border=True):
    c1, c2, c3 = st.columns([1, 2, 2])
    scopes = ["this project", "all projects"] if project is not None else ["all projects"]
    scope = c1.radio("Events of", scopes, key=f"{key}.scope")
    project_id = project.id if project is not None and scope == "this project" else None
    actions = c2.multiselect("Action", event_actions(engine, user, project_id), key=f"{key}.actions")
    people = {u.id: u.username for u in list_users(engine, user)}
    actors = c3.multiselect("By", list(people), format_func=people.__getitem__, key=f"{key}.actors")
    c4, c5, c6 = st.columns([1, 2, 1])
    example_id = c4.number_input("Item # (0: any)", min_value=0, value=0, step=1, key=f"{key}.example")
    dates = c5.date_input("Between (dates, UTC)", value=[], key=f"{key}.dates")
    page = c6.number_input("Page", min_value=1, value=1, step=1, key=f"{key}.page")

since = until = None
if len(dates) >= 1:
    since = datetime.combine(dates[0], time.min, tzinfo=timezone.utc)
if len(dates) == 2:
    until = datetime.combine(dates[1], time.min, tzinfo=timezone.utc) + timedelta(days=1)
flt = EventFilter(project_id=project_id, actions=tuple(actions), actor_ids=tuple(actors),
                  entity="example" if example_id else None, entity_id=int(example_id) or None,
                  since=since, until=until)
total = count_events(engine, user, flt)
rows = query_events(engine, user, flt, limit=PAGE_SIZE, offset=(int(page) - 1) * PAGE_SIZE)
st.caption(f"{total:,} events · newest first · page {int(page)} of {max(1, -(-total // PAGE_SIZE))}")


def as_json(value: object) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, default=str)


if rows:
    st.dataframe(pd.DataFrame([{
        "at": row.event.at,
        "by": row.actor or "system",
        "action": row.event.action,
        "entity": row.event.entity,
        "entity id": row.event.entity_id,
        "before": as_json(row.event.before),
        "after": as_json(row.event.after),
    } for row in rows]), hide_index=True, width="stretch")
else:
    st.info("No events match these filters.")

if example_id:
    st.subheader(f"History of item #{int(example_id)}")
    history = example_history(engine, user, int(example_id))
    if history:
        for row in history:
            with st.container(border=True):
                st.text(f"{row.event.at:%Y-%m-%d %H:%M:%S} · {row.actor or 'system'} · {row.event.action}")
                st.code(json.dumps({"before": row.event.before, "after": row.event.after}, indent=2,
                                   ensure_ascii=False, default=str), language="json")
    else:
        st.caption("No recorded changes to this item.")
