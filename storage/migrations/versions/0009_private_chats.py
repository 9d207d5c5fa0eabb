"""identities remember their first private message to the bot

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('identity') as batch:
        batch.add_column(sa.Column('private_chat_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('identity') as batch:
        batch.drop_column('private_chat_at')
