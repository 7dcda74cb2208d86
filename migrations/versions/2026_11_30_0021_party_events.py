"""Party-scheme events: attendance once per party member (per_person), once per household
otherwise

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-30 16:40:00

`event_attendances.per_person` (false for every existing row: all events so far are
household-scheme); the UNIQUE (event_id, household_id) becomes a partial unique index over
household attendances, and a second partial unique index keeps (event_id, resident_id) once for
party attendances, which must name the person.
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("event_attendances", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("per_person", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.drop_constraint(op.f("uq_event_attendances_event_id_household_id"), type_="unique")
        batch_op.create_check_constraint(
            op.f("ck_event_attendances_person_named"), "NOT per_person OR resident_id IS NOT NULL"
        )
    with op.batch_alter_table("event_attendances", schema=None) as batch_op:
        batch_op.create_index(
            "uq_event_attendances_household",
            ["event_id", "household_id"],
            unique=True,
            sqlite_where=sa.text("NOT per_person"),
            postgresql_where=sa.text("NOT per_person"),
        )
        batch_op.create_index(
            "uq_event_attendances_person",
            ["event_id", "resident_id"],
            unique=True,
            sqlite_where=sa.text("per_person"),
            postgresql_where=sa.text("per_person"),
        )


def downgrade() -> None:
    op.execute("DELETE FROM event_attendances WHERE per_person")
    with op.batch_alter_table("event_attendances", schema=None) as batch_op:
        batch_op.drop_index("uq_event_attendances_person")
        batch_op.drop_index("uq_event_attendances_household")
    with op.batch_alter_table("event_attendances", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_event_attendances_person_named"), type_="check")
        batch_op.drop_column("per_person")
        batch_op.create_unique_constraint(
            op.f("uq_event_attendances_event_id_household_id"), ["event_id", "household_id"]
        )
