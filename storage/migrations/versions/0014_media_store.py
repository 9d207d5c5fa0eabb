"""media store: files notices carry across platforms (media), what each platform calls them (media_ref),
their expiring web addresses (media_link), and a notice's document name (announcement.attachment_name)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'media',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('mime', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('sha256'),
    )
    op.create_table(
        'media_ref',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('media_id', sa.Integer(), nullable=False),
        sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.ForeignKeyConstraint(['media_id'], ['media.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('platform', 'ref'),
    )
    op.create_index('ix_media_ref_media_id', 'media_ref', ['media_id'])
    op.create_table(
        'media_link',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('media_id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['media_id'], ['media.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_media_link_media_id', 'media_link', ['media_id'])
    with op.batch_alter_table('announcement') as batch:
        batch.add_column(sa.Column('attachment_name', sqlmodel.sql.sqltypes.AutoString(), nullable=False,
                                   server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('announcement') as batch:
        batch.drop_column('attachment_name')
    op.drop_index('ix_media_link_media_id', table_name='media_link')
    op.drop_table('media_link')
    op.drop_index('ix_media_ref_media_id', table_name='media_ref')
    op.drop_table('media_ref')
    op.drop_table('media')
