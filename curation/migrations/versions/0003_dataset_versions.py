"""dataset versions: candidate/approved snapshots of a project's items with hash, stats and checklist

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 10:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('datasetversion',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('approved_by_id', sa.Integer(), nullable=True),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('approval_note', sa.Text(), nullable=False),
    sa.Column('override_reason', sa.Text(), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('item_count', sa.Integer(), nullable=False),
    sa.Column('stats', sa.JSON(), nullable=False),
    sa.Column('checklist', sa.JSON(), nullable=False),
    sa.Column('split_seed', sa.Integer(), nullable=False),
    sa.Column('task_type', sa.String(length=20), nullable=False),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['approved_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('project_id', 'number', name='uq_datasetversion_project_number')
    )
    with op.batch_alter_table('datasetversion', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_datasetversion_project_id'), ['project_id'], unique=False)

    op.create_table('datasetversionitem',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('example_id', sa.Integer(), nullable=True),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.Column('split', sa.String(length=20), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('prompt', sa.Text(), nullable=True),
    sa.Column('response', sa.Text(), nullable=True),
    sa.Column('messages', sa.JSON(), nullable=True),
    sa.Column('label', sa.String(length=200), nullable=True),
    sa.Column('source', sa.String(length=500), nullable=True),
    sa.Column('licence', sa.String(length=200), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['example_id'], ['example.id'], ),
    sa.ForeignKeyConstraint(['version_id'], ['datasetversion.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('datasetversionitem', schema=None) as batch_op:
        batch_op.create_index('ix_datasetversionitem_version_split', ['version_id', 'split'], unique=False)
        batch_op.create_index(batch_op.f('ix_datasetversionitem_version_id'), ['version_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('datasetversionitem', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_datasetversionitem_version_id'))
        batch_op.drop_index('ix_datasetversionitem_version_split')
    op.drop_table('datasetversionitem')
    with op.batch_alter_table('datasetversion', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_datasetversion_project_id'))
    op.drop_table('datasetversion')
