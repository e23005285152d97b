"""First start: migrate the schema, create the admin from the environment, load the demo projects."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from curation.auth import create_user, get_user
from curation.db import migrate, read_session
from curation.io import ColumnMapping, import_table, open_table
from curation.models import Project, Role, TaskType, User
from curation.projects import create_project
from curation.settings import Settings, get_settings

DEMO_DIR = Path(__file__).parent / "demo"
# Demo accounts, documented in the README. Loaded only into an empty database with LOAD_DEMO on.
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
    """Idempotent: safe on every start of the app or the CLI."""
    settings = settings or get_settings()
    migrate(engine)
    with read_session(engine) as session:
        has_users = session.execute(select(func.count(User.id))).scalar_one() > 0
        has_projects = session.execute(select(func.count(Project.id))).scalar_one() > 0
    if settings.admin_username and settings.admin_password and not has_users:
        create_user(engine, None, settings.admin_username, Role.admin, settings.admin_password)
        has_users = True
    if settings.load_demo and not has_users and not has_projects:
        load_demo(engine)


def load_demo(engine: Engine) -> None:
    """Demo users, a support-ticket classification project with imported multi-annotator labels,
    and a support-reply generation project. Data: curation/demo (synthetic, CC0-1.0)."""
    admin = None
    for username, role, password in DEMO_USERS:
        user = create_user(engine, admin, username, role, password)
        admin = admin or user
    admin = get_user(engine, "admin")
    create_project(engine, admin, DEMO_CLASSIFICATION, TaskType.classification,
                   labels=["billing", "technical_issue", "account_access", "shipping", "refund_request"],
                   guidelines=TICKET_GUIDELINES, overlap_k=2)
    from curation.demo_test_set import load_demo_test_set, set_demo_objective

    set_demo_objective(engine, DEMO_CLASSIFICATION)  # stated before any label comes in
    tickets = open_table(DEMO_DIR / "support_tickets.jsonl")
    import_table(engine, admin, tickets, ColumnMapping(id=["ticket_id"], text="text", source="source",
                                                       licence="licence"), DEMO_CLASSIFICATION)
    labels = open_table(DEMO_DIR / "support_ticket_labels.csv")
    import_table(engine, admin, labels, ColumnMapping(id=["ticket_id"], annotator="annotator", label="label",
                                                      annotated_at="labelled_at", metadata=[]), DEMO_CLASSIFICATION)
    load_demo_test_set(engine, DEMO_CLASSIFICATION)
    create_project(engine, admin, DEMO_GENERATION, TaskType.generation, guidelines=REPLY_GUIDELINES, overlap_k=2)
    replies = open_table(DEMO_DIR / "instructions.jsonl")
    import_table(engine, admin, replies, ColumnMapping(id=["id"], prompt="prompt", response="response",
                                                       source="source", licence="licence"), DEMO_GENERATION)
