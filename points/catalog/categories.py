"""A catalog's categories (德治、自治、法治、党建 by default): catalog data, like its rules.

A village may add its own (乡风文明, 产业发展) in a new version and adopt it like any change. The
order is the order of board sections and report columns; `black` marks the categories whose
deductions go on the 黑榜 (breaking the 村规民约: 法治 by default). Pure: standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_CATEGORIES = 20
MAX_NAME = 16  # catalog_rules.category is VARCHAR(16)


@dataclass(frozen=True, kw_only=True)
class Category:
    """One category of a catalog: its name, what it covers, and whether its deductions are 黑榜."""

    name: str
    description: str = ""
    black: bool = False


# The same as points.models.catalog.DEFAULT_CATEGORY_ROWS (what a NULL list means in the
# database); kept here too so that the engine stays standard-library only (a test compares them).
DEFAULT_CATEGORIES: tuple[Category, ...] = (
    Category(name="德治", description="孝善信勤俭美、移风易俗、环境卫生"),
    Category(name="自治", description="村民会议、议事协商、志愿服务"),
    Category(name="法治", description="平安建设、普法、遵守村规民约", black=True),
    Category(name="党建", description="党员认岗定责、组织生活"),
)
DEFAULT_NAMES = tuple(c.name for c in DEFAULT_CATEGORIES)


@dataclass(frozen=True)
class CategoryProblem:
    """One problem with a catalog's categories: the 1-based position (0: the list), field, text."""

    position: int
    field: str
    code: str
    message: str


def category_from_dict(data: Mapping[str, Any]) -> Category:
    """Build a Category from its JSON form; raise ValueError on an unknown key."""
    unknown = sorted(set(data) - {"name", "description", "black"})
    if unknown:
        raise ValueError(f"类别 {data.get('name')} 含未知字段：{'、'.join(unknown)}")
    return Category(
        name=data.get("name", ""),
        description=data.get("description") or "",
        black=bool(data.get("black", False)),
    )


def category_to_dict(category: Category) -> dict[str, Any]:
    """Return the JSON form of a category."""
    return {"name": category.name, "description": category.description, "black": category.black}


def categories_from_json(data: Sequence[Mapping[str, Any]] | None) -> list[Category]:
    """Return the categories stored on a version; NULL (stored before 0015): the defaults."""
    if data is None:
        return list(DEFAULT_CATEGORIES)
    return [category_from_dict(item) for item in data]


def check_categories(categories: Sequence[Category]) -> list[CategoryProblem]:
    """Return every problem of a category list (empty when it may be adopted)."""
    out: list[CategoryProblem] = []
    if not categories:
        out.append(CategoryProblem(0, "categories", "categories_empty", "至少要有一个类别"))
    elif len(categories) > MAX_CATEGORIES:
        message = f"类别最多 {MAX_CATEGORIES} 个，现有 {len(categories)} 个"
        out.append(CategoryProblem(0, "categories", "categories_too_many", message))
    seen: dict[str, int] = {}
    for n, c in enumerate(categories, start=1):
        name = c.name.strip() if isinstance(c.name, str) else ""
        if not name:
            out.append(CategoryProblem(n, "name", "category_name_required", "请填写类别名称"))
            continue
        if len(name) > MAX_NAME or any(ch in name for ch in "、,，;；/ "):
            message = f"类别名称“{name}”应为不超过 {MAX_NAME} 个字、不含标点和空格的词"
            out.append(CategoryProblem(n, "name", "category_name_invalid", message))
        if name.isascii():
            # Rule codes are ASCII: a condition naming "A1" must mean one thing.
            message = f"类别名称“{name}”须用中文，以免与项目编码混淆"
            out.append(CategoryProblem(n, "name", "category_name_invalid", message))
        if name in seen:
            message = f"类别“{name}”与第 {seen[name]} 个类别重复"
            out.append(CategoryProblem(n, "name", "category_duplicate", message))
        else:
            seen[name] = n
    return out


def category_names(categories: Iterable[Category]) -> tuple[str, ...]:
    """Return the names in catalog order."""
    return tuple(c.name for c in categories)


def black_names(categories: Iterable[Category]) -> frozenset[str]:
    """Return the names of the categories whose deductions go on the 黑榜."""
    return frozenset(c.name for c in categories if c.black)


def ordered(names: Iterable[str], categories: Sequence[Category]) -> list[str]:
    """Return `names` in the catalog's category order; names it no longer has come last, sorted."""
    order: dict[str, int] = {}
    for n, c in enumerate(categories):
        order.setdefault(c.name, n)
    return sorted(set(names), key=lambda name: (order.get(name, len(order)), name))
