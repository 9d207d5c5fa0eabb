"""leases (one poller per platform, one process per chat's turns); an update's chat kept with it

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-14 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'lease',
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('holder', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )
    op.create_index('ix_lease_holder', 'lease', ['holder'])
    with op.batch_alter_table('inbox_update') as batch:
        batch.add_column(sa.Column('chat_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.create_index('ix_inbox_chat', ['platform', 'chat_id', 'processed_at', 'id'])


def downgrade() -> None:
    with op.batch_alter_table('inbox_update') as batch:
        batch.drop_index('ix_inbox_chat')
        batch.drop_column('chat_id')
    op.drop_index('ix_lease_holder', table_name='lease')
    op.drop_table('lease')
