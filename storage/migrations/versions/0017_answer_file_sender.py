"""answer files: who sent each (answer_file.person_id), told when it cannot be fetched; a file no
answer holds any more is deleted rather than kept as 'dropped'

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 08:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('answer_file') as batch:
        batch.add_column(sa.Column('person_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_answer_file_person_id', 'person', ['person_id'], ['id'])
    op.execute("DELETE FROM answer_file WHERE status = 'dropped'")


def downgrade() -> None:
    with op.batch_alter_table('answer_file') as batch:
        batch.drop_constraint('fk_answer_file_person_id', type_='foreignkey')
        batch.drop_column('person_id')
