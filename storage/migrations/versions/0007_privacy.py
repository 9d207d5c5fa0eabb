"""whose inbox update it was; which places an export held; household codes that were just ids

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 03:10:00
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('inbox_update', schema=None) as batch_op:
        batch_op.add_column(sa.Column('person_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_inbox_update_person_id'), ['person_id'], unique=False)
        batch_op.create_foreign_key('fk_inbox_update_person_id', 'person', ['person_id'], ['id'])
    # exports recorded before this revision did not say which places were in the file: an empty list
    with op.batch_alter_table('export_record', schema=None) as batch_op:
        batch_op.add_column(sa.Column('place_ids', sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
    _recode_id_codes()


def _recode_id_codes() -> None:
    """Households registered before surveys got their id as a join code (0004): a key anyone can
    guess. They get a random one; members see it with /cuatoi."""
    connection = op.get_bind()
    household = sa.table('household', sa.column('id', sa.Integer()), sa.column('join_code', sa.String()))
    rows = connection.execute(
        sa.select(household.c.id).where(sa.func.length(household.c.join_code) < 6).order_by(household.c.id)
    )
    for (household_id,) in rows.all():
        code = _new_code()
        while connection.execute(sa.select(household.c.id).where(household.c.join_code == code)).first():
            code = _new_code()
        connection.execute(household.update().where(household.c.id == household_id).values(join_code=code))


def _new_code() -> str:
    return f"{secrets.randbelow(900_000_000) + 100_000_000}"  # as handlers/surveys/households.py makes them


def downgrade() -> None:
    with op.batch_alter_table('export_record', schema=None) as batch_op:
        batch_op.drop_column('place_ids')
    with op.batch_alter_table('inbox_update', schema=None) as batch_op:
        batch_op.drop_constraint('fk_inbox_update_person_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_inbox_update_person_id'))
        batch_op.drop_column('person_id')
