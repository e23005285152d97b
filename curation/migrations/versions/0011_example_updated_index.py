"""example: index on (project_id, updated_at) for the embedding pages' change stamp and edits_since

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 17:15:00.000000
"""
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('example', schema=None) as batch_op:
        batch_op.create_index('ix_example_project_updated', ['project_id', 'updated_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('example', schema=None) as batch_op:
        batch_op.drop_index('ix_example_project_updated')
