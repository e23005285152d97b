"""re-review of suspected label errors: who re-reviews (project), the item's re-review state, superseded labels

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 16:30:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('project') as batch:
        batch.add_column(sa.Column('rereview_by', sa.String(length=20), nullable=False, server_default='leads'))
    with op.batch_alter_table('example') as batch:
        batch.add_column(sa.Column('rereview', sa.String(length=20), nullable=True))
    with op.batch_alter_table('annotation') as batch:
        batch.add_column(sa.Column('superseded', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('annotation') as batch:
        batch.drop_column('superseded')
    with op.batch_alter_table('example') as batch:
        batch.drop_column('rereview')
    with op.batch_alter_table('project') as batch:
        batch.drop_column('rereview_by')
