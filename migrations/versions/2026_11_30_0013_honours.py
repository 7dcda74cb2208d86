"""honours: 星级文明户, party 评星定级, yearly 表彰 and the 道德模范 roll (lists, entries,
appeals), the branch's 民主评议, households' public honour records, schemes.honour_rules

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 15:00:00
"""

import sqlalchemy as sa
from alembic import op

import points.db

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "honour_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("village_id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=24), nullable=False),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_honour_records_household_id_households"),
        ),
        sa.ForeignKeyConstraint(
            ["village_id"], ["villages.id"], name=op.f("fk_honour_records_village_id_villages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_honour_records")),
        sa.UniqueConstraint("ref", name=op.f("uq_honour_records_ref")),
        sa.UniqueConstraint(
            "village_id", "household_id", name=op.f("uq_honour_records_village_id_household_id")
        ),
    )
    with op.batch_alter_table("honour_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_honour_records_village_id"), ["village_id"], unique=False
        )

    op.create_table(
        "honour_lists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("village_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", points.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("approved_at", points.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("approved_by", sa.Integer(), nullable=True),
        sa.Column("published_at", points.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("published_by", sa.Integer(), nullable=True),
        sa.Column("head_seq", sa.Integer(), nullable=True),
        sa.Column("head_hash", sa.String(length=64), nullable=True),
        sa.Column("privacy_mode", sa.String(length=16), nullable=True),
        sa.Column("snapshot", sa.JSON(), nullable=True),
        sa.Column("withdrawn_at", points.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_by", sa.Integer(), nullable=True),
        sa.Column("withdraw_reason", sa.Text(), nullable=True),
        sa.Column("correction_of", sa.Integer(), nullable=True),
        sa.Column("corrected_by", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('household_stars', 'party_stars', 'awards', 'models')",
            name=op.f("ck_honour_lists_kind_known"),
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'approved') OR (head_seq IS NOT NULL AND head_hash IS NOT NULL AND snapshot IS NOT NULL)",
            name=op.f("ck_honour_lists_published_has_head"),
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'approved', 'published', 'withdrawn', 'superseded')",
            name=op.f("ck_honour_lists_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["approved_by"], ["users.id"], name=op.f("fk_honour_lists_approved_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["corrected_by"],
            ["honour_lists.id"],
            name=op.f("fk_honour_lists_corrected_by_honour_lists"),
        ),
        sa.ForeignKeyConstraint(
            ["correction_of"],
            ["honour_lists.id"],
            name=op.f("fk_honour_lists_correction_of_honour_lists"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_honour_lists_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["published_by"], ["users.id"], name=op.f("fk_honour_lists_published_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["village_id"], ["villages.id"], name=op.f("fk_honour_lists_village_id_villages")
        ),
        sa.ForeignKeyConstraint(
            ["withdrawn_by"], ["users.id"], name=op.f("fk_honour_lists_withdrawn_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_honour_lists")),
    )
    with op.batch_alter_table("honour_lists", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_honour_lists_village_id"), ["village_id"], unique=False
        )
        batch_op.create_index(
            "uq_honour_lists_live",
            ["village_id", "kind", "year"],
            unique=True,
            sqlite_where=sa.text("status IN ('draft', 'approved', 'published')"),
            postgresql_where=sa.text("status IN ('draft', 'approved', 'published')"),
        )

    op.create_table(
        "party_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("village_id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("grade", sa.String(length=8), nullable=True),
        sa.Column("recorded_by", sa.Integer(), nullable=False),
        sa.Column("recorded_at", points.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "score IS NOT NULL OR grade IS NOT NULL", name=op.f("ck_party_reviews_score_or_grade")
        ),
        sa.CheckConstraint(
            "score IS NULL OR (score >= 0 AND score <= 100)",
            name=op.f("ck_party_reviews_score_range"),
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["users.id"], name=op.f("fk_party_reviews_recorded_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["residents.id"], name=op.f("fk_party_reviews_resident_id_residents")
        ),
        sa.ForeignKeyConstraint(
            ["village_id"], ["villages.id"], name=op.f("fk_party_reviews_village_id_villages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_party_reviews")),
        sa.UniqueConstraint(
            "village_id",
            "resident_id",
            "year",
            name=op.f("uq_party_reviews_village_id_resident_id_year"),
        ),
    )
    with op.batch_alter_table("party_reviews", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_party_reviews_village_id"), ["village_id"], unique=False
        )

    op.create_table(
        "honour_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("village_id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("review_score", sa.Integer(), nullable=True),
        sa.Column("stars", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("consent_note", sa.Text(), nullable=True),
        sa.Column("removed", sa.Boolean(), nullable=False),
        sa.Column("removed_reason", sa.Text(), nullable=True),
        sa.Column("removed_by", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "NOT removed OR removed_reason IS NOT NULL",
            name=op.f("ck_honour_entries_removal_has_reason"),
        ),
        sa.CheckConstraint(
            "stars IS NULL OR (stars >= 0 AND stars <= 5)",
            name=op.f("ck_honour_entries_stars_range"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_honour_entries_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_honour_entries_household_id_households"),
        ),
        sa.ForeignKeyConstraint(
            ["list_id"], ["honour_lists.id"], name=op.f("fk_honour_entries_list_id_honour_lists")
        ),
        sa.ForeignKeyConstraint(
            ["removed_by"], ["users.id"], name=op.f("fk_honour_entries_removed_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["residents.id"], name=op.f("fk_honour_entries_resident_id_residents")
        ),
        sa.ForeignKeyConstraint(
            ["village_id"], ["villages.id"], name=op.f("fk_honour_entries_village_id_villages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_honour_entries")),
    )
    with op.batch_alter_table("honour_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_honour_entries_household_id"), ["household_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_honour_entries_list_id"), ["list_id"], unique=False)

    op.create_table(
        "honour_appeals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("village_id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("raised_by", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("resolved_by", sa.Integer(), nullable=True),
        sa.Column("resolved_at", points.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("correction_list_id", sa.Integer(), nullable=True),
        sa.Column("created_at", points.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'upheld', 'dismissed')", name=op.f("ck_honour_appeals_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["correction_list_id"],
            ["honour_lists.id"],
            name=op.f("fk_honour_appeals_correction_list_id_honour_lists"),
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["honour_entries.id"],
            name=op.f("fk_honour_appeals_entry_id_honour_entries"),
        ),
        sa.ForeignKeyConstraint(
            ["list_id"], ["honour_lists.id"], name=op.f("fk_honour_appeals_list_id_honour_lists")
        ),
        sa.ForeignKeyConstraint(
            ["raised_by"], ["users.id"], name=op.f("fk_honour_appeals_raised_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by"], ["users.id"], name=op.f("fk_honour_appeals_resolved_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["village_id"], ["villages.id"], name=op.f("fk_honour_appeals_village_id_villages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_honour_appeals")),
    )
    with op.batch_alter_table("honour_appeals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_honour_appeals_entry_id"), ["entry_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_honour_appeals_village_id"), ["village_id"], unique=False
        )

    with op.batch_alter_table("schemes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("honour_rules", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("schemes", schema=None) as batch_op:
        batch_op.drop_column("honour_rules")

    with op.batch_alter_table("honour_appeals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_honour_appeals_village_id"))
        batch_op.drop_index(batch_op.f("ix_honour_appeals_entry_id"))

    op.drop_table("honour_appeals")
    with op.batch_alter_table("honour_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_honour_entries_list_id"))
        batch_op.drop_index(batch_op.f("ix_honour_entries_household_id"))

    op.drop_table("honour_entries")
    with op.batch_alter_table("party_reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_party_reviews_village_id"))

    op.drop_table("party_reviews")
    with op.batch_alter_table("honour_lists", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_honour_lists_live",
            sqlite_where=sa.text("status IN ('draft', 'approved', 'published')"),
            postgresql_where=sa.text("status IN ('draft', 'approved', 'published')"),
        )
        batch_op.drop_index(batch_op.f("ix_honour_lists_village_id"))

    op.drop_table("honour_lists")
    with op.batch_alter_table("honour_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_honour_records_village_id"))

    op.drop_table("honour_records")
