"""web console logins: one-time login links (console_login) and browser sessions (console_session)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table, until in (('console_login', 'used_at'), ('console_session', 'ended_at')):
        op.create_table(
            table,
            sa.Column('id', sa.Integer(), nullable=False),
            sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
            sa.Column('person_id', sa.Integer(), nullable=False),
            sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
            sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
            sa.Column(until, sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
            sa.ForeignKeyConstraint(['person_id'], ['person.id']),
            sa.PrimaryKeyConstraint('id'),
        )
        op.create_index(f'ix_{table}_token_hash', table, ['token_hash'], unique=True)
        op.create_index(f'ix_{table}_person_id', table, ['person_id'])


def downgrade() -> None:
    for table in ('console_session', 'console_login'):
        op.drop_index(f'ix_{table}_person_id', table_name=table)
        op.drop_index(f'ix_{table}_token_hash', table_name=table)
        op.drop_table(table)
