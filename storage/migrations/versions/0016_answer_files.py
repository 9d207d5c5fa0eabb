"""answer files: photos, voice notes, videos and files residents send as survey answers, each fetched
once into the media store (answer_file)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'answer_file',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('response_id', sa.Integer(), nullable=False),
        sa.Column('question', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('at', sa.JSON(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('media_id', sa.Integer(), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_try_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('claimed_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['media_id'], ['media.id']),
        sa.ForeignKeyConstraint(['response_id'], ['survey_response.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_answer_file_due', 'answer_file', ['status', 'next_try_at'])
    op.create_index('ix_answer_file_media_id', 'answer_file', ['media_id'])
    op.create_index('ix_answer_file_response_id', 'answer_file', ['response_id'])


def downgrade() -> None:
    op.drop_index('ix_answer_file_response_id', table_name='answer_file')
    op.drop_index('ix_answer_file_media_id', table_name='answer_file')
    op.drop_index('ix_answer_file_due', table_name='answer_file')
    op.drop_table('answer_file')
