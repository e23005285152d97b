"""example: the priority, test-set and audit indexes become partial (WHERE ... IS NOT NULL)

Every lookup on these columns names an id or asks IS NOT NULL (the suspected-first queue walks the
scored items by priority), and most items have none. An import writes all three as NULL, so a bulk
load (curation.data.bulk) no longer rebuilds them: about 0.25 s of a 100k-row import into SQLite.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 02:10:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

_INDEXES = {'ix_example_project_priority': ['project_id', 'priority'], 'ix_example_test_set_id': ['test_set_id'],
            'ix_example_audit_id': ['audit_id']}


def upgrade() -> None:
    with op.batch_alter_table('example', schema=None) as batch_op:
        for name, columns in _INDEXES.items():
            batch_op.drop_index(name)
            where = sa.text(f'{columns[-1]} IS NOT NULL')
            batch_op.create_index(name, columns, unique=False, sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    with op.batch_alter_table('example', schema=None) as batch_op:
        for name, columns in _INDEXES.items():
            batch_op.drop_index(name)
            batch_op.create_index(name, columns, unique=False)
