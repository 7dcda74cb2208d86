"""Tables, one module per aggregate; importing this package registers them all on Base.metadata."""

from points.models.audit import ApiToken, AuditEvent, IdempotencyRecord
from points.models.backups import Backup, MovedId, VillageMove
from points.models.boards import Board, BoardAppeal, BoardEntry
from points.models.catalog import CatalogRule, CatalogVersion, Scheme, SettingChange
from points.models.claims import Claim, ClaimBatch, Evidence, Objection
from points.models.cycles import CycleRun, Lease, Period
from points.models.events import Attendance, Event, EventGroup
from points.models.honours import (
    HonourAppeal,
    HonourEntry,
    HonourList,
    HonourRecord,
    PartyReview,
)
from points.models.ledger import Account, ChainHead, JournalEntry, Posting
from points.models.org import Group, Household, Resident, RoleAssignment, User, Village
from points.models.shop import (
    Good,
    HouseholdCard,
    QrNonce,
    Redemption,
    RedemptionItem,
    RedemptionPolicy,
    RedemptionQuota,
    ShopOrder,
    ShopOrderItem,
    StockMovement,
    Store,
)

__all__ = [
    "Attendance",
    "Event",
    "EventGroup",
    "Backup",
    "MovedId",
    "VillageMove",
    "ApiToken",
    "AuditEvent",
    "IdempotencyRecord",
    "Board",
    "BoardAppeal",
    "BoardEntry",
    "Account",
    "CatalogRule",
    "Claim",
    "ClaimBatch",
    "Evidence",
    "Objection",
    "CatalogVersion",
    "ChainHead",
    "CycleRun",
    "Group",
    "Household",
    "JournalEntry",
    "Lease",
    "HonourAppeal",
    "HonourEntry",
    "HonourList",
    "HonourRecord",
    "PartyReview",
    "Period",
    "Posting",
    "Resident",
    "RoleAssignment",
    "Scheme",
    "SettingChange",
    "User",
    "Village",
    "Good",
    "HouseholdCard",
    "QrNonce",
    "Redemption",
    "RedemptionItem",
    "RedemptionPolicy",
    "RedemptionQuota",
    "ShopOrder",
    "ShopOrderItem",
    "StockMovement",
    "Store",
]
