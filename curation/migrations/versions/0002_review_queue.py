"""review queue: assignments (leases and skips), suspicion priority, queue order

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 09:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.add_column(sa.Column('queue_order', sa.String(length=20), nullable=False,
                                      server_default='unlabelled_first'))

    with op.batch_alter_table('example', schema=None) as batch_op:
        batch_op.add_column(sa.Column('priority', sa.Float(), nullable=True))
        batch_op.create_index('ix_example_queue', ['project_id', 'status', 'id'], unique=False)
        batch_op.create_index('ix_example_project_priority', ['project_id', 'priority'], unique=False)

    op.create_table('assignment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('example_id', sa.Integer(), nullable=False),
    sa.Column('annotator_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('assigned_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['annotator_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['assigned_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['example_id'], ['example.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('example_id', 'annotator_id', name='uq_assignment_example_annotator')
    )
    with op.batch_alter_table('assignment', schema=None) as batch_op:
        batch_op.create_index('ix_assignment_project_annotator', ['project_id', 'annotator_id', 'state'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_assignment_example_id'), ['example_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('assignment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_assignment_example_id'))
        batch_op.drop_index('ix_assignment_project_annotator')

    op.drop_table('assignment')
    with op.batch_alter_table('example', schema=None) as batch_op:
        batch_op.drop_index('ix_example_project_priority')
        batch_op.drop_index('ix_example_queue')
        batch_op.drop_column('priority')

    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.drop_column('queue_order')
