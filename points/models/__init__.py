"""Tables, one module per aggregate; importing this package registers them all on Base.metadata."""

from points.models.audit import ApiToken, AuditEvent, IdempotencyRecord
from points.models.catalog import Scheme
from points.models.ledger import Account, ChainHead, JournalEntry, Posting
from points.models.org import Group, Household, Resident, RoleAssignment, User, Village

__all__ = [
    "ApiToken",
    "AuditEvent",
    "IdempotencyRecord",
    "Account",
    "ChainHead",
    "Group",
    "Household",
    "JournalEntry",
    "Posting",
    "Resident",
    "RoleAssignment",
    "Scheme",
    "User",
    "Village",
]
