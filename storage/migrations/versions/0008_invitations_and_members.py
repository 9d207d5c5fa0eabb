"""role invitations; residents' village membership

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 01:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'invitation',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('code_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('role', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('place_id', sa.Integer(), nullable=False),
        sa.Column('invited_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('used_by', sa.Integer(), nullable=True),
        sa.Column('used_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('withdrawn_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['place_id'], ['place.id']),
        sa.ForeignKeyConstraint(['invited_by'], ['person.id']),
        sa.ForeignKeyConstraint(['used_by'], ['person.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_invitation_token_hash', 'invitation', ['token_hash'], unique=True)
    op.create_index('ix_invitation_code_hash', 'invitation', ['code_hash'], unique=True)
    op.create_index('ix_invitation_place_id', 'invitation', ['place_id'])
    op.create_index('ix_invitation_invited_by', 'invitation', ['invited_by'])
    op.create_table(
        'village_member',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('place_id', sa.Integer(), nullable=False),
        sa.Column('source', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('joined_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['person_id'], ['person.id']),
        sa.ForeignKeyConstraint(['place_id'], ['place.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('person_id'),
    )
    op.create_index('ix_village_member_place_id', 'village_member', ['place_id'])


def downgrade() -> None:
    op.drop_index('ix_village_member_place_id', table_name='village_member')
    op.drop_table('village_member')
    for index in ('ix_invitation_invited_by', 'ix_invitation_place_id', 'ix_invitation_code_hash',
                  'ix_invitation_token_hash'):
        op.drop_index(index, table_name='invitation')
    op.drop_table('invitation')
