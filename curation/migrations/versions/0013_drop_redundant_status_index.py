"""example: drop ix_example_project_status, a prefix of ix_example_queue (project_id, status, id)

Every lookup by (project_id, status) is served as well by the queue index, and one index fewer is
one less to update per written row and to rebuild after a bulk import.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 23:35:00.000000
"""
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('example', schema=None) as batch_op:
        batch_op.drop_index('ix_example_project_status')


def downgrade() -> None:
    with op.batch_alter_table('example', schema=None) as batch_op:
        batch_op.create_index('ix_example_project_status', ['project_id', 'status'], unique=False)
