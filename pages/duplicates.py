"""Duplicates (leads): exact and near-duplicate groups side by side with their labels, conflicts
flagged; keep one and exclude the rest ("duplicate of #id", audited), per group or in bulk."""

from typing import Any

import streamlit as st

from curation.embeddings.dedup import (
    DEFAULT_THRESHOLD,
    DuplicateReport,
    duplicate_report,
    exclude_duplicates,
    exclude_groups,
)
from curation.errors import CurationError
from curation.icons import STATUS_ICONS
from curation.models import Role
from ui.embedding import current_items, freshness, vectors_or_stop
from ui.page import open_project_page
from ui.session import flash, show_flash
from ui.widgets import escape_markdown, show_error

user, engine, project = open_project_page("Duplicates", Role.lead, Role.admin)
show_flash()
key = f"dup.{project.id}"

items = current_items(user, project.id)
if not len(items):
    st.info("No examples to compare yet.")
    st.stop()
vectors = vectors_or_stop(project.id, items)


# A resource, not data: st.cache_data unpickled the whole report (every group and text) on each
# rerun, over a second at 100k examples. The page only reads it.
@st.cache_resource(show_spinner="Finding duplicates...", max_entries=8)
def _report(fingerprint: str, threshold: float, _items: Any, _vectors: Any) -> DuplicateReport:
    return duplicate_report(_items, _vectors, threshold)


c1, c2 = st.columns([3, 1])
threshold = c1.slider(
    "Near-duplicate threshold (cosine)",
    0.80,
    1.0,
    DEFAULT_THRESHOLD,
    0.01,
    key=f"{key}.threshold",
    help=f"default {DEFAULT_THRESHOLD}: chosen on the demo data (see curation/dedup.py)",
)
only_conflicts = c2.checkbox("Only conflicts", key=f"{key}.conflicts")
report = _report(items.fingerprint, float(threshold), items, vectors)
freshness(items)
m1, m2, m3 = st.columns(3)
m1.metric("Duplicate groups", len(report.groups))
m2.metric("Groups with conflicting labels", len(report.conflicts))
m3.metric("Redundant examples", report.redundant)

groups = report.conflicts if only_conflicts else report.groups
if not groups:
    st.success("No duplicates at this threshold.")
    st.stop()

with st.expander(f"Bulk: keep one in each group ({len(groups)} groups)"):
    include_conflicts = st.checkbox(
        "Also groups with conflicting labels (keeps the majority label)", key=f"{key}.bulk_conflicts"
    )
    if st.button("Keep one per group, exclude the rest", key=f"{key}.bulk"):
        try:
            count = exclude_groups(engine, user, groups, include_conflicts=include_conflicts)
            flash(f"Excluded {count} duplicates.")
            st.rerun()
        except CurationError as error:
            show_error(error)

per_page = 20
MEMBERS_SHOWN = 8
pages = (len(groups) - 1) // per_page + 1
page = st.number_input(f"Page (of {pages})", 1, pages, 1, key=f"{key}.page") if pages > 1 else 1
for number, group in enumerate(
    groups[(page - 1) * per_page : page * per_page], start=(page - 1) * per_page + 1
):
    with st.container(border=True):
        flag = "⚠️ conflicting labels: " + ", ".join(group.labels) if group.conflict else "same label"
        st.caption(escape_markdown(
            f"Group {number} · {group.kind} · {len(group.members)} examples · min cosine "
            f"{group.min_similarity:.3f} · {flag}"
        ))
        # a group of paraphrases can hold hundreds of items: show the first few (and the suggested keep)
        keep = group.suggested_keep()
        shown = group.members[:MEMBERS_SHOWN]
        if keep not in [m.example_id for m in shown]:
            shown = [*shown[:-1], next(m for m in group.members if m.example_id == keep)]
        columns = st.columns(min(len(shown), 4))
        for i, member in enumerate(shown):
            with columns[i % len(columns)]:
                st.caption(escape_markdown(
                    f"#{member.example_id} · {member.external_id} · {STATUS_ICONS.get(member.status, '')} "
                    f"{member.status} · cos {member.similarity:.3f}"
                ))
                st.text(f"label: {member.label or '—'}")
                st.text(member.text)
        if len(group.members) > len(shown):
            st.caption(f"... and {len(group.members) - len(shown):,} more examples in this group "
                       "(excluded with the rest when you keep one).")
        gkey = f"{key}.g{group.ids[0]}"
        options = [m.example_id for m in shown]
        choice = st.radio(
            "Keep",
            options,
            index=options.index(keep),
            horizontal=True,
            format_func=lambda i: f"#{i}",
            key=f"{gkey}.keep",
        )
        if st.button(f"Keep #{choice}, exclude the rest", key=f"{gkey}.exclude"):
            try:
                done = exclude_duplicates(engine, user, choice, group.ids)
                flash(
                    f"Kept #{choice}; excluded {', '.join(f'#{i}' for i in done)} as duplicates of #{choice}."
                )
                st.rerun()
            except CurationError as error:
                show_error(error)
