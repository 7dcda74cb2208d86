"""Catalog versions: drafts, validation, adoption, immutability (domain and database), dates."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from points import catalog
from points.catalog.rules import Review, Rule, Unit, Window
from points.errors import (
    CatalogImmutableError,
    CatalogProblemsError,
    CatalogStateError,
    NotFoundError,
    ValidationError,
)
from points.models import CatalogRule, CatalogVersion, Scheme
from tests.factories import make_scheme, make_village


def rule(code: str = "XIAO-01", **kw) -> Rule:
    values = dict(
        code=code,
        name=f"项目 {code}",
        category="德治",
        subcategory="积孝",
        points=5,
        caps={Window.month: 10},
    )
    if "min_points" in kw:
        values["points"] = None
    values.update(kw)
    return Rule(**values)


RULES = [
    rule("XIAO-01"),
    rule("SHAN-01", min_points=2, max_points=10, caps={Window.year: 30}, review=Review.always),
    rule("MEI-01", sign=-1, points=3, evidence_required=True, review=Review.always),
    rule("ZZ-01", category="自治", subcategory=None, unit=Unit.hour, points=2),
]


@pytest.fixture
def scheme(session):
    return make_scheme(session, make_village(session))


def draft(session, scheme, now, rules=RULES, title="2026 年积分标准"):
    return catalog.create_draft(
        session, scheme=scheme, rules=rules, title=title, actor_id=None, now=now
    )


def adopted(session, scheme, now, on: date, rules=RULES, **kw):
    version = draft(session, scheme, now, rules=rules)
    return catalog.adopt(
        session,
        version=version,
        body="村民代表大会",
        adopted_on=on,
        actor_id=None,
        now=now,
        **kw,
    )


def count_versions(session) -> int:
    return session.execute(select(func.count()).select_from(CatalogVersion)).scalar_one()


# --- drafts --------------------------------------------------------------------------------------


def test_a_draft_keeps_every_rule_in_order_and_numbers_versions_per_scheme(session, scheme, now):
    first = draft(session, scheme, now)
    second = draft(session, scheme, now, rules=RULES[:2])
    other = draft(session, make_scheme(session, make_village(session)), now)

    assert (first.number, second.number, other.number) == (1, 2, 1)
    assert first.status == "draft" and first.created_at == now
    assert catalog.rules_of(first) == RULES
    assert {r.village_id for r in first.rules} == {scheme.village_id}
    assert [v.number for v in catalog.list_versions(session, scheme=scheme)] == [1, 2]
    assert catalog.latest_draft(session, scheme=scheme) is second


def test_a_draft_can_copy_another_version(session, scheme, now):
    base = adopted(session, scheme, now, date(2026, 1, 1))
    copy = catalog.create_draft(
        session, scheme=scheme, rules=None, title="", actor_id=None, now=now, based_on=base
    )
    assert copy.number == 2 and copy.title == f"{scheme.name}积分标准"
    assert catalog.rules_of(copy) == catalog.rules_of(base)


def test_validation_reports_every_problem_of_every_rule_and_writes_nothing(session, scheme, now):
    broken = [
        rule("XIAO-01"),
        rule("bad code", category="德行"),
        rule("SHAN-01", min_points=9, max_points=3),
        rule("XIAO-01", sign=-1, honourable=True),
        rule("MEI-01", name=" ", recorder_roles={"mayor"}),
    ]
    with pytest.raises(CatalogProblemsError) as caught:
        draft(session, scheme, now, rules=broken)

    found = {(p.position, p.field, p.code) for p in caught.value.problems}
    assert found == {
        (2, "code", "code_invalid"),
        (2, "category", "category_unknown"),
        (3, "min_points", "range_inverted"),
        (4, "honourable", "deduction_honourable"),
        (4, "code", "code_duplicate"),
        (5, "name", "name_required"),
        (5, "recorder_roles", "role_unknown"),
    }
    assert caught.value.code == "catalog_invalid"
    lines = caught.value.errors["problems"]
    assert "第 4 项（XIAO-01） 编码：编码“XIAO-01”与第 1 项重复" in lines
    assert "第 3 项（SHAN-01） 最低分：最低分 9 不能高于最高分 3" in lines
    assert count_versions(session) == 0


def test_an_empty_catalog_is_refused(session, scheme, now):
    with pytest.raises(CatalogProblemsError) as caught:
        draft(session, scheme, now, rules=[])
    assert str(caught.value.problems[0]) == "积分标准：积分标准至少要有一项"


def test_save_draft_replaces_the_open_draft_instead_of_piling_up_versions(session, scheme, now):
    adopted(session, scheme, now, date(2026, 1, 1))
    first, created = catalog.save_draft(
        session, scheme=scheme, rules=RULES, title="草案", actor_id=None, now=now
    )
    changed = [dataclasses.replace(RULES[0], points=8), *RULES[1:], rule("QIN-01")]
    again, created_again = catalog.save_draft(
        session, scheme=scheme, rules=changed, title="修改稿", actor_id=None, now=now
    )
    assert (created, created_again) == (True, False)
    assert again is first and again.number == 2 and again.title == "修改稿"
    assert catalog.rules_of(again) == changed
    assert count_versions(session) == 2


def test_a_draft_can_be_discarded(session, scheme, now):
    version = draft(session, scheme, now)
    catalog.discard_draft(session, version=version)
    assert count_versions(session) == 0
    assert session.execute(select(func.count()).select_from(CatalogRule)).scalar_one() == 0


# --- adoption ------------------------------------------------------------------------------------


def test_adopting_records_the_vote_and_retires_the_previous_version(session, scheme, now):
    first = adopted(session, scheme, now, date(2026, 1, 5), note="会议记录 2026-01")
    assert (first.status, first.adopted_by_body, first.note) == (
        "adopted",
        "村民代表大会",
        "会议记录 2026-01",
    )
    assert (first.adopted_on, first.effective_from, first.effective_to) == (
        date(2026, 1, 5),
        date(2026, 1, 5),
        None,
    )

    second = adopted(session, scheme, now, date(2026, 11, 20), effective_from=date(2026, 12, 1))
    assert (first.status, first.effective_to) == ("retired", date(2026, 12, 1))
    assert (second.status, second.effective_from) == ("adopted", date(2026, 12, 1))
    assert catalog.adopted_version(session, scheme=scheme) is second
    statuses = [v.status for v in catalog.list_versions(session, scheme=scheme)]
    assert statuses == ["retired", "adopted"]


def test_adoption_checks_the_vote_and_the_dates(session, scheme, now):
    adopted(session, scheme, now, date(2026, 6, 1))
    version = draft(session, scheme, now)
    tomorrow = date(2026, 11, 26)  # NOW is 2026-11-25 in Beijing
    with pytest.raises(ValidationError) as caught:
        catalog.adopt(
            session,
            version=version,
            body=" ",
            adopted_on=tomorrow,
            actor_id=None,
            now=now,
            effective_from=date(2026, 5, 1),
        )
    assert set(caught.value.errors) == {"body", "adopted_on", "effective_from"}
    assert "2026-06-01" in caught.value.errors["effective_from"][0]
    assert version.status == "draft"
    assert catalog.adopted_version(session, scheme=scheme).number == 1


def test_only_a_draft_can_be_adopted_or_edited(session, scheme, now):
    version = adopted(session, scheme, now, date(2026, 1, 1))
    with pytest.raises(CatalogImmutableError) as caught:
        catalog.adopt(
            session,
            version=version,
            body="村民代表大会",
            adopted_on=date(2026, 2, 1),
            actor_id=None,
            now=now,
        )
    assert caught.value.code == "catalog_immutable"
    with pytest.raises(CatalogImmutableError, match="第 1 版积分标准已通过，不能修改"):
        catalog.update_draft(session, version=version, rules=RULES[:1])
    with pytest.raises(CatalogImmutableError):
        catalog.discard_draft(session, version=version)
    assert catalog.rules_of(version) == RULES


def test_retiring_leaves_no_catalog_in_force(session, scheme, now):
    version = adopted(session, scheme, now, date(2026, 1, 1))
    with pytest.raises(CatalogStateError):
        catalog.retire(session, version=draft(session, scheme, now), on=date(2026, 6, 1))
    catalog.retire(session, version=version, on=date(2026, 6, 1))
    assert (version.status, version.effective_to) == ("retired", date(2026, 6, 1))
    assert catalog.adopted_version(session, scheme=scheme) is None
    assert catalog.adopted_version(session, scheme=scheme, on=date(2026, 5, 31)) is version
    with pytest.raises(NotFoundError):
        catalog.find_rule(session, scheme=scheme, code="XIAO-01", on=date(2026, 6, 1))
    # A later version cannot reach back into the retired one's window.
    with pytest.raises(ValidationError, match="无法通过") as caught:
        adopted(session, scheme, now, date(2026, 5, 1))
    assert caught.value.errors["effective_from"] == ["生效日期不能早于上一版停用的日期 2026-06-01"]
    assert adopted(session, scheme, now, date(2026, 6, 1)).effective_from == date(2026, 6, 1)


# --- the version in force on a date --------------------------------------------------------------


def test_find_rule_picks_the_version_in_force_on_the_date(session, scheme, now):
    v1 = adopted(session, scheme, now, date(2026, 1, 1))
    richer = [dataclasses.replace(RULES[0], points=8), *RULES[1:]]
    v2 = adopted(session, scheme, now, date(2026, 7, 1), rules=richer)
    # Adopted today, in force from New Year: until then version 2 still applies.
    v3 = adopted(
        session, scheme, now, date(2026, 11, 25), rules=RULES[:1], effective_from=date(2027, 1, 1)
    )

    def points_on(day: date) -> tuple[int, int]:
        version, row = catalog.find_rule(session, scheme=scheme, code="XIAO-01", on=day)
        return version.number, row.points

    assert points_on(date(2026, 6, 30)) == (1, 5)
    assert points_on(date(2026, 7, 1)) == (2, 8)
    assert points_on(date(2026, 12, 31)) == (2, 8)
    assert points_on(date(2027, 1, 1)) == (3, 5)
    assert (v1.effective_to, v2.effective_to, v3.effective_to) == (
        date(2026, 7, 1),
        date(2027, 1, 1),
        None,
    )
    with pytest.raises(NotFoundError, match="2025-12-31 没有生效的"):
        catalog.find_rule(session, scheme=scheme, code="XIAO-01", on=date(2025, 12, 31))
    with pytest.raises(NotFoundError, match="第 3 版积分标准中没有编码为“SHAN-01”的项目"):
        catalog.find_rule(session, scheme=scheme, code="SHAN-01", on=date(2027, 2, 1))
    _, row = catalog.find_rule(session, scheme=scheme, code="SHAN-01", on=date(2026, 8, 1))
    assert catalog.rule_of(row) == RULES[1]


# --- immutability in the database ----------------------------------------------------------------


def refused(engine, sql: str, **params) -> str:
    with engine.connect() as conn:
        try:
            conn.execute(text(sql), params)
            conn.commit()
        except DBAPIError as exc:  # the driver's error type differs per database
            return str(exc)
    raise AssertionError(f"{sql} was allowed")


def test_the_database_refuses_to_change_an_adopted_catalog(engine, session, scheme, now):
    version = adopted(session, scheme, now, date(2026, 1, 1))
    session.commit()
    vid = version.id
    for sql in (
        "UPDATE catalog_rules SET points = 50 WHERE version_id = :v",
        "DELETE FROM catalog_rules WHERE version_id = :v",
        "INSERT INTO catalog_rules (village_id, version_id, code, name, category, description, "
        "sign, unit, caps, evidence_required, review, recorder_roles, subjects, honourable) "
        "SELECT village_id, version_id, 'NEW-1', name, category, description, sign, unit, caps, "
        "evidence_required, review, recorder_roles, subjects, honourable "
        "FROM catalog_rules WHERE version_id = :v AND code = 'XIAO-01'",
        "UPDATE catalog_versions SET title = '改过的' WHERE id = :v",
        "UPDATE catalog_versions SET status = 'draft' WHERE id = :v",
        "DELETE FROM catalog_versions WHERE id = :v",
    ):
        assert "immutable" in refused(engine, sql, v=vid)

    # Bypassing the domain through the ORM is refused as well.
    session.get(CatalogRule, version.rules[0].id).points = 99
    with pytest.raises(DBAPIError, match="immutable"):
        session.flush()
    session.rollback()
    assert catalog.rules_of(session.get(CatalogVersion, vid)) == RULES


def test_the_database_refuses_to_change_a_retired_catalog(engine, session, scheme, now):
    old = adopted(session, scheme, now, date(2026, 1, 1))
    adopted(session, scheme, now, date(2026, 7, 1))
    session.commit()
    for sql in (
        "UPDATE catalog_versions SET status = 'adopted' WHERE id = :v",
        "UPDATE catalog_versions SET effective_to = NULL WHERE id = :v",
        "UPDATE catalog_rules SET name = 'x' WHERE version_id = :v",
    ):
        assert "immutable" in refused(engine, sql, v=old.id)


def test_retiring_a_catalog_cannot_rewrite_its_categories(engine, session, scheme, now):
    # Retiring (adopted -> retired) may set status and effective_to only: the categories its
    # entries were judged by (黑榜 or not) stay as adopted.
    version = adopted(session, scheme, now, date(2026, 1, 1))
    session.commit()
    sql = (
        "UPDATE catalog_versions SET status = 'retired', effective_to = '2026-06-30', "
        "categories = '[]' WHERE id = :v"
    )
    assert "immutable" in refused(engine, sql, v=version.id)


def test_the_database_allows_editing_a_draft_and_one_adopted_version_per_scheme(
    engine, session, scheme, now
):
    current = adopted(session, scheme, now, date(2026, 1, 1))
    version = draft(session, scheme, now)
    session.commit()
    with engine.connect() as conn:
        conn.execute(
            text("UPDATE catalog_rules SET points = 7 WHERE version_id = :v"), {"v": version.id}
        )
        conn.execute(
            text("UPDATE catalog_versions SET title = 't' WHERE id = :v"), {"v": version.id}
        )
        conn.commit()
    # A second adopted version without retiring the first breaks the partial UNIQUE index.
    message = refused(
        engine,
        "UPDATE catalog_versions SET status = 'adopted', adopted_on = :d, effective_from = :d "
        "WHERE id = :v",
        v=version.id,
        d=date(2026, 2, 1),
    )
    assert "uq_catalog_versions_one_adopted" in message or "UNIQUE" in message
    assert current.status == "adopted"


# --- diffs ---------------------------------------------------------------------------------------


def test_diff_names_added_removed_and_changed_rules_field_by_field(session, scheme, now):
    old = adopted(session, scheme, now, date(2026, 1, 1))
    new_rules = [
        dataclasses.replace(RULES[0], points=8, caps={Window.month: 16, Window.year: 100}),
        RULES[1],
        dataclasses.replace(RULES[3], recorder_roles={"admin", "recorder", "resident"}),
        rule("QIN-01", name="参加技能培训", category="德治", subcategory="积勤", points=2),
    ]
    new = draft(session, scheme, now, rules=new_rules)
    diff = catalog.diff_versions(old, new)

    assert [r.code for r in diff.added] == ["QIN-01"]
    assert [r.code for r in diff.removed] == ["MEI-01"]
    assert [(c.code, [(f.field, f.before, f.after) for f in c.changes]) for c in diff.changed] == [
        ("XIAO-01", [("points", 5, 8), ("caps.month", 10, 16), ("caps.year", None, 100)]),
        ("ZZ-01", [("recorder_roles", ["admin", "recorder"], ["admin", "recorder", "resident"])]),
    ]
    assert diff.summary() == "新增 1 项，删除 1 项，修改 2 项"
    assert diff.lines() == [
        "+ 新增 QIN-01 参加技能培训（德治·积勤，加分，每次 2 分，每月最多 10 分）",
        "- 删除 MEI-01 项目 MEI-01",
        "* 修改 XIAO-01 项目 XIAO-01：分值 5 → 8；每月上限 10 → 16；每年上限 （空） → 100",
        "* 修改 ZZ-01 项目 ZZ-01：可登记角色 村两委、网格员 → 村两委、网格员、村民本人",
    ]
    assert catalog.diff_versions(old, old).empty
    assert catalog.diff_versions(old, old).summary() == "没有变化"
    assert [r.code for r in catalog.diff_versions(None, old).added] == [r.code for r in RULES]


def test_diff_ignores_the_order_of_rules(session, scheme, now):
    assert catalog.diff_rules(RULES, list(reversed(RULES))).empty


# --- the demo village ----------------------------------------------------------------------------


def test_the_demo_village_starts_with_the_default_catalogs_adopted(session, now):
    from points.demo import create_demo_village, load_catalog

    result = create_demo_village(session, now=now, households=6, months=1)
    schemes = session.execute(
        select(Scheme).where(Scheme.village_id == result.village.id).order_by(Scheme.id)
    ).scalars()
    for scheme in schemes:
        (version,) = catalog.list_versions(session, scheme=scheme)
        assert (version.number, version.status, version.adopted_by_body) == (
            1,
            "adopted",
            "村民代表大会",
        )
        assert version.effective_from <= (now - timedelta(days=30)).date()
        assert [r.code for r in version.rules] == [r["code"] for r in load_catalog(scheme.code)]
