"""Events: create, list, read with the attendance list, check in (door or own phone), close."""

from __future__ import annotations

from flask_smorest import Blueprint

from api.db import db
from api.events import actions
from api.events.schemas import (
    AttendanceSchema,
    AttendeeSchema,
    CheckinInSchema,
    CloseResultSchema,
    EventInSchema,
    EventSchema,
    SelfCheckinInSchema,
)
from api.rest import ApiView, audit, documented_errors, village_for
from api.web.identity import current_actor
from points import events, org
from points.db import utcnow
from points.ledger import statements
from points.models import Scheme
from points.models.org import Role

blp = Blueprint("events", __name__, url_prefix="/api/v1", description="活动签到")

ORGANISERS = (Role.ADMIN,)
DOOR = (Role.ADMIN, Role.RECORDER, Role.CLERK)


def _doc(*codes):
    return documented_errors(blp, *codes)


def _shown(village, event):
    """The event as staff read it, with its scheme and the URL its QR encodes."""
    event.qr_url = actions.qr_url(village, event)
    scheme = db().get(Scheme, event.scheme_id)
    event.scheme_code, event.per_person = scheme.code, events.per_person(scheme)
    return event


@blp.route("/villages/<code>/events")
class Events(ApiView):
    @blp.response(200, EventSchema(many=True))
    @_doc(401, 403, 404)
    def get(self, code):
        """List the village's events, latest first."""
        village = village_for(code, *DOOR)
        return [_shown(village, e) for e in events.list_events(db(), village=village)]

    @blp.arguments(EventInSchema)
    @blp.response(201, EventSchema)
    @_doc(401, 403, 404, 422)
    def post(self, data, code):
        """Create an event: title, time window, place, the scheme and rule it earns (a rule of
        that scheme's catalog in force on the event's day), who may attend. A party-scheme
        event (scheme `party`) is for party members only, each checking in once, each earning
        the rule's party points."""
        village = village_for(code, *ORGANISERS)
        scheme = statements.get_scheme(db(), village=village, code=data.pop("scheme"))
        event = events.create_event(
            db(), village=village, scheme=scheme, actor=current_actor(), now=utcnow(), **data
        )
        audit(village, "event.create", event, f"新建活动“{event.title}”", "event")
        return _shown(village, event)


@blp.route("/villages/<code>/events/<int:event_id>")
class EventItem(ApiView):
    @blp.response(200, EventSchema)
    @_doc(401, 403, 404)
    def get(self, code, event_id):
        """Read an event."""
        village = village_for(code, *DOOR)
        return _shown(village, events.get_event(db(), village=village, event_id=event_id))


@blp.route("/villages/<code>/events/<int:event_id>/attendees")
class Attendees(ApiView):
    @blp.response(200, AttendeeSchema(many=True))
    @_doc(401, 403, 404)
    def get(self, code, event_id):
        """The attendance list in check-in order."""
        village = village_for(code, *DOOR)
        event = events.get_event(db(), village=village, event_id=event_id)
        return events.attendees(db(), event=event)


@blp.route("/villages/<code>/events/<int:event_id>/checkins")
class Checkins(ApiView):
    @blp.arguments(CheckinInSchema)
    @blp.response(201, AttendanceSchema)
    @_doc(401, 403, 404, 409, 422)
    def post(self, data, code, event_id):
        """Check in at the door: a household card or phone code scanned, or a walk-in by name.
        Refused outside the time window (checkin_not_open), twice for a household — for a
        person on a party-scheme event — (already_checked_in), for another village
        (event_wrong_village, token_wrong_village) or for someone the event does not invite
        (not_invited; not_party_member on a party-scheme event). On a party-scheme event a card
        or phone code stands for the household's one party member; a household with several
        is member_required (409: check the one who came in by name)."""
        village = village_for(code, *DOOR)
        event = events.get_event(db(), village=village, event_id=event_id)
        if "code" in data:
            return actions.door_scan(village, event, data["code"], audit)
        return actions.walk_in(village, event, data["resident_id"], audit)


@blp.route("/villages/<code>/events/checkin")
class SelfCheckin(ApiView):
    @blp.arguments(SelfCheckinInSchema)
    @blp.response(201, AttendanceSchema)
    @_doc(401, 403, 404, 409, 422)
    def post(self, data, code):
        """Check myself in (a resident signed in) with the event QR I scanned."""
        village = org.get_village(db(), code)
        current_actor()  # signed in, whoever: another village's resident is refused by name
        event = actions.event_from_scan(village, data["code"])
        return actions.self_checkin(village, event, audit)


@blp.route("/villages/<code>/events/<int:event_id>/close")
class Close(ApiView):
    @blp.response(200, CloseResultSchema)
    @_doc(401, 403, 404, 409, 422)
    def post(self, code, event_id):
        """Close check-in: the attendance becomes ONE group claim under the event's rule (review
        and 公示 as the rule says), exactly once (a second close is event_closed)."""
        village = village_for(code, *ORGANISERS)
        event = events.get_event(db(), village=village, event_id=event_id)
        event, batch, claims = actions.close(village, event, audit)
        return {
            "event": _shown(village, event),
            "batch_id": batch.id if batch else None,
            "claims": [c.id for c in claims],
        }
