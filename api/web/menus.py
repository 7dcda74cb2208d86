"""The staff and resident menus, built in one place from the signed-in user's roles.

Each item names its page by endpoint (a string: api/web imports no feature) and the roles that
page lets in, so a role never sees a link it cannot open. tests/api/test_admin_pages.py opens
every link of every staff role's menu."""

from __future__ import annotations

from dataclasses import dataclass

from flask import g, request, url_for

from points.models.org import Role

A, V, R, C = Role.ADMIN, Role.REVIEWER, Role.RECORDER, Role.CLERK


@dataclass(frozen=True)
class MenuItem:
    label: str
    endpoint: str
    roles: frozenset[str]  # the roles the page serves (a subset of those it admits); empty: public
    more: bool = False  # setting-up pages: folded under 管理设置 on a phone


def _item(label: str, endpoint: str, *roles: str) -> MenuItem:
    return MenuItem(label, endpoint, frozenset(roles))


def _setup(label: str, endpoint: str, *roles: str) -> MenuItem:
    return MenuItem(label, endpoint, frozenset(roles), more=True)


# In the order a clerk of the 村两委 reads them: daily work first, then setting up. The setting-up
# pages fold under one 管理设置 button on a phone, so the day's work fits the first screen.
STAFF_MENU: tuple[MenuItem, ...] = (
    _item("工作台", "dashboard.dashboard", A, V),
    _item("登记", "claim_pages.record", A, R),
    _item("审核", "claim_pages.review", A, V),
    _item("活动签到", "event_pages.events_page", A, R, C),
    # The counter page opens for admins too, but only a clerk may scan and redeem there.
    _item("兑换", "counter.home", C),
    _item("库存", "counter.stock", A, C),
    _item("红黑榜", "board_pages.boards", A),
    _item("评星表彰", "honour_pages.manage", A, V),
    _setup("民主评议", "honour_pages.reviews", A),
    _setup("花名册", "org_pages.roster", A),
    _setup("农户", "org_pages.households", A),
    _setup("账号", "org_pages.staff", A),
    _setup("积分标准", "catalog_pages.manage", A),
    _setup("方案设置", "catalog_pages.settings", A),
    _setup("超市商品", "shop_admin.goods", A),
    _setup("户卡", "shop_admin.cards", A),
    _setup("周期与对账", "cycle_pages.periods", A),
    _setup("异常报告", "claim_pages.anomalies", A, V),
    _setup("操作日志", "org_pages.audit", A),
    _item("公示栏", "claim_pages.public_notices"),
)

RESIDENT_MENU: tuple[MenuItem, ...] = (
    _item("我的积分", "ledger_pages.home", Role.RESIDENT),
    _item("兑换码", "shop_pages.my_qr", Role.RESIDENT),
    _item("积分超市", "shop_pages.shop_page", Role.RESIDENT),
    _item("申报", "claim_pages.declare", Role.RESIDENT),
    _item("扫码签到", "event_pages.resident_scan", Role.RESIDENT),
    _item("公示", "claim_pages.notices_page", Role.RESIDENT),
    _item("我家荣誉", "honour_pages.mine", Role.RESIDENT),
)


def visible(items: tuple[MenuItem, ...], roles: set[str]) -> list[MenuItem]:
    """Return the items whose page admits one of `roles` (public items always)."""
    return [item for item in items if not item.roles or item.roles & roles]


FOLD_AT_LEAST = 3


@dataclass(frozen=True)
class Link:
    label: str
    href: str
    current: bool  # the page being shown (aria-current)


@dataclass(frozen=True)
class Menu:
    main: list[Link]
    more: list[Link]  # folded under 管理设置

    @property
    def more_open(self) -> bool:
        """Unfold 管理设置 when the page shown is one of its own, so the user sees where they are."""
        return any(link.current for link in self.more)

    def __iter__(self):
        """(label, url) of every link, daily work first."""
        return iter([(link.label, link.href) for link in self.main + self.more])


def menu(kind: str) -> Menu:
    """Return the signed-in user's menu in the current village (empty when signed out)."""
    actor, village = g.get("page_actor"), g.get("village")
    if actor is None or village is None:
        return Menu([], [])
    items = STAFF_MENU if kind == "staff" else RESIDENT_MENU
    roles = actor.roles_in(village)
    here = request.endpoint
    main: list[Link] = []
    more: list[Link] = []
    for item in visible(items, roles):
        link = Link(item.label, url_for(item.endpoint, code=village.code), item.endpoint == here)
        (more if item.more else main).append(link)
    if len(more) <= FOLD_AT_LEAST - 1:  # folding one or two links saves nothing
        main, more = main + more, []
    return Menu(main, more)
