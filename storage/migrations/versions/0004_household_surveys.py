"""household surveys

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 06:11:53.778807
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('survey_form',
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('imported_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('code')
    )
    op.create_table('campaign',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('survey_code', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('place_id', sa.Integer(), nullable=False),
    sa.Column('opened_by', sa.Integer(), nullable=False),
    sa.Column('expected_households', sa.Integer(), nullable=True),
    sa.Column('opened_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('closed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['opened_by'], ['person.id'], ),
    sa.ForeignKeyConstraint(['place_id'], ['place.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaign_place_id'), ['place_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_campaign_survey_code'), ['survey_code'], unique=False)

    op.create_table('export_record',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('via', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('survey_code', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('place_id', sa.Integer(), nullable=False),
    sa.Column('format', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('households', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['place_id'], ['place.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('reminder_plan',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=False),
    sa.Column('run_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('done_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('reminded', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], ),
    sa.ForeignKeyConstraint(['created_by'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('reminder_plan', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reminder_plan_campaign_id'), ['campaign_id'], unique=False)

    op.create_table('survey_reminder',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('household_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('chat_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('sent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], ),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('household_id', 'day')
    )
    with op.batch_alter_table('survey_reminder', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_survey_reminder_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_survey_reminder_household_id'), ['household_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_survey_reminder_status'), ['status'], unique=False)

    op.create_table('survey_response',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('household_id', sa.Integer(), nullable=False),
    sa.Column('answers', sa.JSON(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('updated_by', sa.Integer(), nullable=True),
    sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('submitted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], ),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], ),
    sa.ForeignKeyConstraint(['updated_by'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('campaign_id', 'household_id')
    )
    with op.batch_alter_table('survey_response', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_survey_response_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_survey_response_household_id'), ['household_id'], unique=False)

    with op.batch_alter_table('announcement', schema=None) as batch_op:
        batch_op.add_column(sa.Column('campaign_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_announcement_campaign_id', 'campaign', ['campaign_id'], ['id'])

    # households registered before surveys existed get their id as a join code
    with op.batch_alter_table('household', schema=None) as batch_op:
        batch_op.add_column(sa.Column('join_code', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    op.execute("UPDATE household SET join_code = CAST(id AS VARCHAR)")
    with op.batch_alter_table('household', schema=None) as batch_op:
        batch_op.alter_column('join_code', existing_type=sqlmodel.sql.sqltypes.AutoString(), nullable=False)
        batch_op.create_index(batch_op.f('ix_household_join_code'), ['join_code'], unique=True)



def downgrade() -> None:
    with op.batch_alter_table('household', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_household_join_code'))
        batch_op.drop_column('join_code')

    with op.batch_alter_table('announcement', schema=None) as batch_op:
        batch_op.drop_constraint('fk_announcement_campaign_id', type_='foreignkey')
        batch_op.drop_column('campaign_id')

    with op.batch_alter_table('survey_response', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_survey_response_household_id'))
        batch_op.drop_index(batch_op.f('ix_survey_response_campaign_id'))

    op.drop_table('survey_response')
    with op.batch_alter_table('survey_reminder', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_survey_reminder_status'))
        batch_op.drop_index(batch_op.f('ix_survey_reminder_household_id'))
        batch_op.drop_index(batch_op.f('ix_survey_reminder_campaign_id'))

    op.drop_table('survey_reminder')
    with op.batch_alter_table('reminder_plan', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reminder_plan_campaign_id'))

    op.drop_table('reminder_plan')
    op.drop_table('export_record')
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaign_survey_code'))
        batch_op.drop_index(batch_op.f('ix_campaign_place_id'))

    op.drop_table('campaign')
    op.drop_table('survey_form')
