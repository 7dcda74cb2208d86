"""events: staff-created events residents check in to by QR; closing them records one group claim

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 15:00:00
"""

import sqlalchemy as sa
from alembic import op

import points.db


revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("village_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("place", sa.String(length=200), nullable=False),
        sa.Column("held_on", sa.Date(), nullable=False),
        sa.Column("starts_at", points.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", points.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("scheme_id", sa.Integer(), nullable=False),
        sa.Column("rule_code", sa.String(length=64), nullable=False),
        sa.Column("audience", sa.String(length=16), nullable=False),
        sa.Column("qr_key", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_at", points.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_by", sa.Integer(), nullable=True),
        sa.Column("closed_at", points.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "audience IN ('village', 'groups', 'party')", name=op.f("ck_events_audience")
        ),
        sa.CheckConstraint("state IN ('open', 'closed')", name=op.f("ck_events_state")),
        sa.CheckConstraint("starts_at < ends_at", name=op.f("ck_events_window")),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["claim_batches.id"], name=op.f("fk_events_batch_id_claim_batches")
        ),
        sa.ForeignKeyConstraint(
            ["closed_by"], ["users.id"], name=op.f("fk_events_closed_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_events_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["scheme_id"], ["schemes.id"], name=op.f("fk_events_scheme_id_schemes")
        ),
        sa.ForeignKeyConstraint(
            ["village_id"], ["villages.id"], name=op.f("fk_events_village_id_villages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("batch_id", name=op.f("uq_events_batch_id")),
        sa.UniqueConstraint("qr_key", name=op.f("uq_events_qr_key")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_events_village_id"), ["village_id"], unique=False)

    op.create_table(
        "event_attendances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("village_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=True),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("checked_in_by", sa.Integer(), nullable=True),
        sa.Column("checked_in_at", points.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["checked_in_by"], ["users.id"], name=op.f("fk_event_attendances_checked_in_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_event_attendances_event_id_events")
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_event_attendances_household_id_households"),
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["residents.id"],
            name=op.f("fk_event_attendances_resident_id_residents"),
        ),
        sa.ForeignKeyConstraint(
            ["village_id"], ["villages.id"], name=op.f("fk_event_attendances_village_id_villages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_attendances")),
        sa.UniqueConstraint(
            "event_id", "household_id", name=op.f("uq_event_attendances_event_id_household_id")
        ),
    )
    with op.batch_alter_table("event_attendances", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_event_attendances_event_id"), ["event_id"], unique=False
        )

    op.create_table(
        "event_groups",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("village_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_event_groups_event_id_events")
        ),
        sa.ForeignKeyConstraint(
            ["group_id"], ["groups.id"], name=op.f("fk_event_groups_group_id_groups")
        ),
        sa.ForeignKeyConstraint(
            ["village_id"], ["villages.id"], name=op.f("fk_event_groups_village_id_villages")
        ),
        sa.PrimaryKeyConstraint("event_id", "group_id", name=op.f("pk_event_groups")),
    )


def downgrade() -> None:
    op.drop_table("event_groups")
    with op.batch_alter_table("event_attendances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_attendances_event_id"))

    op.drop_table("event_attendances")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_village_id"))

    op.drop_table("events")
