"""training runs: one row per LoRA run of an approved dataset version, written by the worker process

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 12:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('trainingrun',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('task_type', sa.String(length=20), nullable=False),
    sa.Column('base_model', sa.String(length=1000), nullable=False),
    sa.Column('preset', sa.String(length=20), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('cancel_requested_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('max_steps', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Float(), nullable=False),
    sa.Column('loss', sa.Float(), nullable=True),
    sa.Column('tokens_per_s', sa.Float(), nullable=True),
    sa.Column('eta_s', sa.Float(), nullable=True),
    sa.Column('history', sa.JSON(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('warnings', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('output_dir', sa.String(length=1000), nullable=True),
    sa.Column('adapter_path', sa.String(length=1000), nullable=True),
    sa.Column('merged_path', sa.String(length=1000), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('trainingrun', schema=None) as batch_op:
        batch_op.create_index('ix_trainingrun_status', ['status', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_trainingrun_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_trainingrun_version_id'), ['version_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('trainingrun', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_trainingrun_version_id'))
        batch_op.drop_index(batch_op.f('ix_trainingrun_project_id'))
        batch_op.drop_index('ix_trainingrun_status')
    op.drop_table('trainingrun')
