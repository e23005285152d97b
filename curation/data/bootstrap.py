"""First start: migrate the schema, create the admin from the environment, load the demo projects."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from curation.access.accounts import create_user
from curation.access.roles import require_role
from curation.data.demo_test_set import load_demo_test_set, set_demo_objective
from curation.data.formats import open_table
from curation.data.importer import import_table
from curation.data.mapping import ColumnMapping
from curation.data.projects import create_project, get_project
from curation.db import migrate, read_session
from curation.errors import Conflict, PermissionDenied
from curation.models import DatasetVersion, Example, Project, Role, TaskType, User
from curation.review.adjudication import adjudicate, exclude_example
from curation.settings import Settings, get_settings
from curation.versions.approve import approve_version
from curation.versions.build import BuildOptions, create_candidate

DEMO_DIR = Path(__file__).parents[1] / "demo"
# Demo accounts, documented in the README. Loaded into a new database with LOAD_DEMO on, or by `demo`.
DEMO_USERS: tuple[tuple[str, Role, str], ...] = (
    ("admin", Role.admin, "admin-demo"),
    ("lead", Role.lead, "lead-demo"),
    ("alice", Role.annotator, "alice-demo"),
    ("bob", Role.annotator, "bob-demo"),
)
DEMO_CLASSIFICATION = "Support tickets (demo)"
DEMO_GENERATION = "Support replies (demo)"
TICKET_GUIDELINES = """\
## Label each customer message by what the customer needs first

| label | use when the customer... |
|---|---|
| `billing` | asks about a charge, an invoice, a plan price or a payment method |
| `technical_issue` | reports something that does not work: errors, crashes, sync, performance |
| `account_access` | cannot log in, lost two-factor access, wants a password or email change |
| `shipping` | asks where an order is, reports a delay, a wrong address or a damaged parcel |
| `refund_request` | explicitly asks for money back or to return an item for a refund |

- Charged twice **and** asks for the money back: `refund_request`. Only asks why: `billing`.
- Flag messages with personal data (phone numbers, e-mail addresses) and off-task messages (spam, thanks-only).
"""
REPLY_GUIDELINES = """\
## Improve the support reply

- Answer the customer's actual question in the first sentence; keep a friendly, plain tone.
- No promises the support team cannot keep (refund amounts, delivery dates) unless the prompt states them.
- Rate 5 when you would send the reply as is, 1 when it needs a rewrite.
"""


def initialise(engine: Engine, settings: Settings | None = None) -> None:
    """Idempotent: safe on every start of the app or the CLI. LOAD_DEMO alone decides whether the demo
    loads into a new database (no users and no projects before this start), also when ADMIN_USERNAME and
    ADMIN_PASSWORD create the first admin: that admin then loads it."""
    settings = settings or get_settings()
    migrate(engine)
    with read_session(engine) as session:
        has_users = session.execute(select(func.count(User.id))).scalar_one() > 0
        has_projects = session.execute(select(func.count(Project.id))).scalar_one() > 0
    new_database = not has_users and not has_projects
    admin: User | None = None
    if settings.admin_username and settings.admin_password and not has_users:
        admin = create_user(engine, None, settings.admin_username, Role.admin, settings.admin_password)
    if settings.load_demo and new_database:
        load_demo(engine, admin)


def demo_loaded(engine: Engine) -> bool:
    with read_session(engine) as session:
        return session.execute(select(func.count(Project.id)).where(
            Project.name.in_([DEMO_CLASSIFICATION, DEMO_GENERATION]))).scalar_one() > 0


def load_demo(engine: Engine, actor: User | None = None) -> None:
    """Demo users, a support-ticket classification project with imported multi-annotator labels,
    and a support-reply generation project (94 published macros imported as final, 6 weak drafts for
    review). Data: curation/demo (synthetic, CC0-1.0).

    Into a database without accounts `actor` may be None (the demo admin creates the rest); otherwise
    `actor` must be an admin. Demo accounts whose username is taken already (e.g. an `admin` created
    from ADMIN_USERNAME) are kept as they are. Refuses when the demo projects exist."""
    if demo_loaded(engine):
        raise Conflict(f"The demo projects ('{DEMO_CLASSIFICATION}', '{DEMO_GENERATION}') are already loaded.")
    if actor is not None:
        require_role(actor, Role.admin)
    with read_session(engine) as session:
        taken = set(session.execute(select(User.username)).scalars())
    if taken and actor is None:
        raise PermissionDenied("Only an admin can load the demo into a database with accounts "
                               "(`python -m curation --user ADMIN demo`).")
    for username, role, password in DEMO_USERS:
        if username in taken:
            continue
        user = create_user(engine, actor, username, role, password)
        actor = actor or user
    assert actor is not None
    admin = actor
    create_project(engine, admin, DEMO_CLASSIFICATION, TaskType.classification,
                   labels=["billing", "technical_issue", "account_access", "shipping", "refund_request"],
                   guidelines=TICKET_GUIDELINES, overlap_k=2)

    set_demo_objective(engine, DEMO_CLASSIFICATION)  # stated before any label comes in
    tickets = open_table(DEMO_DIR / "support_tickets.jsonl")
    import_table(engine, admin, tickets, ColumnMapping(id=["ticket_id"], text="text", source="source",
                                                       licence="licence"), DEMO_CLASSIFICATION)
    labels = open_table(DEMO_DIR / "support_ticket_labels.csv")
    import_table(engine, admin, labels, ColumnMapping(id=["ticket_id"], annotator="annotator", label="label",
                                                      annotated_at="labelled_at", metadata=[]), DEMO_CLASSIFICATION)
    load_demo_test_set(engine, DEMO_CLASSIFICATION)
    curate_demo(engine, admin)
    create_project(engine, admin, DEMO_GENERATION, TaskType.generation, guidelines=REPLY_GUIDELINES, overlap_k=2)
    # The support team's published macros were reviewed before publication: imported as final (experts
    # will not see them). The six weak drafts wait for the reviewers; a version includes them once reviewed.
    reply_mapping = ColumnMapping(id=["id"], prompt="prompt", response="response", source="source",
                                  licence="licence")
    import_table(engine, admin, open_table(DEMO_DIR / "instructions.jsonl"), reply_mapping, DEMO_GENERATION,
                 responses_as="final")
    import_table(engine, admin, open_table(DEMO_DIR / "instruction_drafts.jsonl"), reply_mapping, DEMO_GENERATION)


def curate_demo(engine: Engine, lead: User) -> DatasetVersion:
    """The end of the demo's story, as a lead would have done it: replay curation/demo/
    curation_decisions.jsonl (re-sent copies, off-task and personal-data tickets excluded; every
    dispute adjudicated with a reason), build a candidate and approve it, attested, with no override.
    Embeddings are off for this first build (no model load at first start); the Versions page builds
    the next candidate with them."""
    project = get_project(engine, DEMO_CLASSIFICATION)
    with read_session(engine) as session:
        ids = dict(session.execute(select(Example.external_id, Example.id)
                                   .where(Example.project_id == project.id)).all())
    with (DEMO_DIR / "curation_decisions.jsonl").open(encoding="utf-8") as handle:
        decisions = [json.loads(line) for line in handle if line.strip()]
    for decision in decisions:
        example_id = ids[decision["ticket_id"]]
        if decision["action"] == "exclude":
            exclude_example(engine, lead, example_id, decision["category"], decision["note"])
        else:
            adjudicate(engine, lead, example_id, final_label=decision["label"], reason=decision["reason"])
    candidate = create_candidate(engine, lead, project.id, BuildOptions(use_embeddings=False))
    return approve_version(engine, lead, candidate.id, attest=True,
                           note="Demo v1: duplicates, off-task and personal-data tickets excluded; "
                                "every dispute adjudicated.")
