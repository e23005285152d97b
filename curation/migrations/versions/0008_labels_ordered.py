"""projects: labels_ordered (the labels form a scale; agreement defaults to the ordinal level)

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-29 17:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('project') as batch_op:
        batch_op.add_column(sa.Column('labels_ordered', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('project') as batch_op:
        batch_op.drop_column('labels_ordered')
