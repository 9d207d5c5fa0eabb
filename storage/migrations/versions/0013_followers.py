"""followers: residents who said yes to their village's notices in a private chat (follower); an outbox
row goes to a group or to a follower, acknowledgements may come from a private chat

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'follower',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('chat_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('following', sa.Boolean(), nullable=False),
        sa.Column('asked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('answered_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('stopped_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('platform', 'chat_id'),
    )
    with op.batch_alter_table('delivery') as batch:
        batch.alter_column('group_id', existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column('follower_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('place_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_delivery_follower_id', 'follower', ['follower_id'], ['id'])
        batch.create_foreign_key('fk_delivery_place_id', 'place', ['place_id'], ['id'])
        batch.create_unique_constraint('uq_delivery_announcement_follower', ['announcement_id', 'follower_id'])
        batch.create_index('ix_delivery_follower_id', ['follower_id'])
    with op.batch_alter_table('acknowledgement') as batch:
        batch.add_column(sa.Column('follower_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_acknowledgement_follower_id', 'follower', ['follower_id'], ['id'])
        batch.create_index('ix_acknowledgement_follower_id', ['follower_id'])


def downgrade() -> None:
    with op.batch_alter_table('acknowledgement') as batch:
        batch.drop_index('ix_acknowledgement_follower_id')
        batch.drop_constraint('fk_acknowledgement_follower_id', type_='foreignkey')
        batch.drop_column('follower_id')
    op.execute("DELETE FROM delivery WHERE group_id IS NULL")
    with op.batch_alter_table('delivery') as batch:
        batch.drop_index('ix_delivery_follower_id')
        batch.drop_constraint('uq_delivery_announcement_follower', type_='unique')
        batch.drop_constraint('fk_delivery_place_id', type_='foreignkey')
        batch.drop_constraint('fk_delivery_follower_id', type_='foreignkey')
        batch.drop_column('place_id')
        batch.drop_column('follower_id')
        batch.alter_column('group_id', existing_type=sa.Integer(), nullable=False)
    op.drop_table('follower')
