"""source labels (issue 12): source accounts, suggestions, label audits, project settings

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 16:30:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=20), nullable=False, server_default='person'))

    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source_votes_count', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('suggestion_display', sa.String(length=20), nullable=False,
                                      server_default='hidden'))
        batch_op.add_column(sa.Column('blind_fraction', sa.Float(), nullable=False, server_default='0.1'))
        batch_op.add_column(sa.Column('max_source_error', sa.Float(), nullable=False, server_default='0.05'))

    with op.batch_alter_table('example', schema=None) as batch_op:
        batch_op.add_column(sa.Column('audit_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_example_audit_id'), ['audit_id'], unique=False)

    op.create_table('suggestion',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('example_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('margin', sa.Float(), nullable=True),
    sa.Column('cluster_coverage', sa.Float(), nullable=True),
    sa.Column('import_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['example_id'], ['example.id'], ),
    sa.ForeignKeyConstraint(['import_id'], ['importrecord.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('example_id', 'source', name='uq_suggestion_example_source')
    )
    with op.batch_alter_table('suggestion', schema=None) as batch_op:
        batch_op.create_index('ix_suggestion_project_source', ['project_id', 'source'], unique=False)
        batch_op.create_index(batch_op.f('ix_suggestion_example_id'), ['example_id'], unique=False)

    op.create_table('labelaudit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('strata', sa.JSON(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('labelaudit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_labelaudit_project_id'), ['project_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('labelaudit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_labelaudit_project_id'))
    op.drop_table('labelaudit')
    with op.batch_alter_table('suggestion', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_suggestion_example_id'))
        batch_op.drop_index('ix_suggestion_project_source')
    op.drop_table('suggestion')
    with op.batch_alter_table('example', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_example_audit_id'))
        batch_op.drop_column('audit_id')
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.drop_column('max_source_error')
        batch_op.drop_column('blind_fraction')
        batch_op.drop_column('suggestion_display')
        batch_op.drop_column('source_votes_count')
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('kind')
