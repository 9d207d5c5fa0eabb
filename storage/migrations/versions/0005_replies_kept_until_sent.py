"""replies kept until sent

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 07:53:18.161503
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('inbox_update', schema=None) as batch_op:
        batch_op.add_column(sa.Column('replies', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('reply_pending', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index(batch_op.f('ix_inbox_update_reply_pending'), ['reply_pending'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('inbox_update', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbox_update_reply_pending'))
        batch_op.drop_column('reply_pending')
        batch_op.drop_column('replies')

