"""preference rounds: blind human comparison of two generation systems (PreferenceRound,
PreferenceItem, PreferenceJudgement, PreferenceLease)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 19:40:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('preferenceround',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('other_run_id', sa.Integer(), nullable=True),
    sa.Column('test_set_version_id', sa.Integer(), nullable=True),
    sa.Column('prompt_source', sa.String(length=300), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('overlap_k', sa.Integer(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('max_new_tokens', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('generated_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('preferenceround', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_preferenceround_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_preferenceround_run_id'), ['run_id'], unique=False)
    op.create_table('preferenceitem',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.Column('messages', sa.JSON(), nullable=False),
    sa.Column('reference', sa.Text(), nullable=True),
    sa.Column('response_a', sa.Text(), nullable=True),
    sa.Column('response_b', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['round_id'], ['preferenceround.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('round_id', 'position', name='uq_preferenceitem_round_position')
    )
    with op.batch_alter_table('preferenceitem', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_preferenceitem_round_id'), ['round_id'], unique=False)
    op.create_table('preferencejudgement',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('annotator_id', sa.Integer(), nullable=False),
    sa.Column('choice', sa.String(length=20), nullable=False),
    sa.Column('a_first', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['annotator_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['item_id'], ['preferenceitem.id'], ),
    sa.ForeignKeyConstraint(['round_id'], ['preferenceround.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('item_id', 'annotator_id', name='uq_preferencejudgement_item_annotator')
    )
    with op.batch_alter_table('preferencejudgement', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_preferencejudgement_item_id'), ['item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_preferencejudgement_round_id'), ['round_id'], unique=False)
    op.create_table('preferencelease',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('annotator_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['annotator_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['item_id'], ['preferenceitem.id'], ),
    sa.ForeignKeyConstraint(['round_id'], ['preferenceround.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('item_id', 'annotator_id', name='uq_preferencelease_item_annotator')
    )
    with op.batch_alter_table('preferencelease', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_preferencelease_item_id'), ['item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_preferencelease_round_id'), ['round_id'], unique=False)


def downgrade() -> None:
    for table in ('preferencelease', 'preferencejudgement', 'preferenceitem', 'preferenceround'):
        op.drop_table(table)
