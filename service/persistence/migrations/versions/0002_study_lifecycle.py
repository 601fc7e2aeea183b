"""study lifecycle: tags, notes, idempotency key, spec hash

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('studies', schema=None) as batch_op:
        # server defaults fill the rows of an existing database
        batch_op.add_column(sa.Column('tags', sa.JSON(), nullable=False,
                                      server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column('notes', sa.Text(), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('idempotency_key', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('spec_hash', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_studies_idempotency_key'), ['idempotency_key'],
                              unique=True)
        batch_op.create_index(batch_op.f('ix_studies_spec_hash'), ['spec_hash'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('studies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_studies_spec_hash'))
        batch_op.drop_index(batch_op.f('ix_studies_idempotency_key'))
        batch_op.drop_column('spec_hash')
        batch_op.drop_column('idempotency_key')
        batch_op.drop_column('notes')
        batch_op.drop_column('tags')
