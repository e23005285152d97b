"""test sets: frozen expert-labelled test items per project (TestSet, TestSetVersion, TestSetItem),
Example.test_set_id, Project.objective, TrainingRun.test_set_version_id

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 16:30:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('testset',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('project_id', 'name', name='uq_testset_project_name')
    )
    with op.batch_alter_table('testset', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_testset_project_id'), ['project_id'], unique=False)
    op.create_table('testsetversion',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('test_set_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('item_count', sa.Integer(), nullable=False),
    sa.Column('task_type', sa.String(length=20), nullable=False),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('stats', sa.JSON(), nullable=False),
    sa.Column('approved_by_id', sa.Integer(), nullable=True),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['approved_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.ForeignKeyConstraint(['test_set_id'], ['testset.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('test_set_id', 'number', name='uq_testsetversion_set_number')
    )
    with op.batch_alter_table('testsetversion', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_testsetversion_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_testsetversion_test_set_id'), ['test_set_id'], unique=False)
    op.create_table('testsetitem',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('test_set_version_id', sa.Integer(), nullable=False),
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
    sa.ForeignKeyConstraint(['test_set_version_id'], ['testsetversion.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('testsetitem', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_testsetitem_test_set_version_id'), ['test_set_version_id'],
                              unique=False)
    with op.batch_alter_table('example', schema=None) as batch_op:
        batch_op.add_column(sa.Column('test_set_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_example_test_set_id'), ['test_set_id'], unique=False)
        batch_op.create_foreign_key('fk_example_test_set_id', 'testset', ['test_set_id'], ['id'])
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.add_column(sa.Column('objective', sa.JSON(), nullable=False, server_default='{}'))
    with op.batch_alter_table('trainingrun', schema=None) as batch_op:
        batch_op.add_column(sa.Column('test_set_version_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('trainingrun', schema=None) as batch_op:
        batch_op.drop_column('test_set_version_id')
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.drop_column('objective')
    with op.batch_alter_table('example', schema=None) as batch_op:
        batch_op.drop_constraint('fk_example_test_set_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_example_test_set_id'))
        batch_op.drop_column('test_set_id')
    with op.batch_alter_table('testsetitem', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_testsetitem_test_set_version_id'))
    op.drop_table('testsetitem')
    with op.batch_alter_table('testsetversion', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_testsetversion_test_set_id'))
        batch_op.drop_index(batch_op.f('ix_testsetversion_project_id'))
    op.drop_table('testsetversion')
    with op.batch_alter_table('testset', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_testset_project_id'))
    op.drop_table('testset')
