"""Events residents check in to by QR (村民大会, 志愿活动): creation, check-in once per household
(own phone, household card, phone code, or by name), and closing into one group claim
(checkin).

Other features use this package's names below (its public API), never a `_private` name."""

from points.events.checkin import (
    AUDIENCE_NAMES,
    METHOD_NAMES,
    AlreadyCheckedInError,
    Attendee,
    CheckinClosedError,
    EventClosedError,
    EventWrongVillageError,
    NotInvitedError,
    attendance_evidence,
    attendees,
    check_in,
    check_in_by_name,
    check_in_card,
    check_in_phone,
    check_in_self,
    close_event,
    create_event,
    event_by_key,
    event_groups,
    get_event,
    list_events,
    search_people,
)

__all__ = [
    "AUDIENCE_NAMES",
    "METHOD_NAMES",
    "AlreadyCheckedInError",
    "Attendee",
    "CheckinClosedError",
    "EventClosedError",
    "EventWrongVillageError",
    "NotInvitedError",
    "attendance_evidence",
    "attendees",
    "check_in",
    "check_in_by_name",
    "check_in_card",
    "check_in_phone",
    "check_in_self",
    "close_event",
    "create_event",
    "event_by_key",
    "event_groups",
    "get_event",
    "list_events",
    "search_people",
]
