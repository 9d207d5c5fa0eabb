"""notice targets: a notice aimed at several places at once (the web console's checkboxes)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'notice_target',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('announcement_id', sa.Integer(), nullable=False),
        sa.Column('place_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['announcement_id'], ['announcement.id']),
        sa.ForeignKeyConstraint(['place_id'], ['place.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('announcement_id', 'place_id'),
    )
    op.create_index('ix_notice_target_announcement_id', 'notice_target', ['announcement_id'])


def downgrade() -> None:
    op.drop_index('ix_notice_target_announcement_id', table_name='notice_target')
    op.drop_table('notice_target')
