"""Event pages: the staff's event list and creation form; an event's page with its QR, the A4
poster, the door scan box (a USB scanner types the code and Enter; the camera reads it and the
server decodes the frame), walk-ins by name, the attendance list and closing; the resident's
扫码签到 page and the check-in page the event's QR opens."""

from __future__ import annotations

from datetime import date, datetime, time

from flask import (
    Blueprint,
    Response,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from api.db import db
from api.events import actions, poster
from api.events import qr as event_codes
from api.web import qr
from api.web.helpers import form_errors, localtime, page_audit, page_village, signed_in
from api.web.identity import current_actor
from points import events, org
from points.catalog.versions import adopted_version, find_rule, rules_of
from points.db import utcnow
from points.errors import NotFoundError, ValidationError
from points.ledger import statements
from points.models import Resident, Scheme
from points.models.org import Role
from points.periods import LOCAL_TZ, local_date

bp = Blueprint("event_pages", __name__, template_folder="templates")
ORGANISERS = (Role.ADMIN,)
DOOR = (Role.ADMIN, Role.RECORDER, Role.CLERK)


def _event(code, event_id, *roles):
    village = page_village(code, *roles)
    return village, events.get_event(db(), village=village, event_id=event_id)


def _award_rules(village):
    """Each scheme's award items in force today, for the creation form's rule dropdown (one
    group per scheme: 农户积分 earns the household points, 党员积分 each party member's)."""
    out = []
    for scheme in sorted(org.get_village(db(), village.code).schemes, key=lambda s: s.id):
        version = adopted_version(db(), scheme=scheme, on=local_date(utcnow()))
        rules = [r for r in rules_of(version) if r.sign > 0] if version else []
        if rules:
            out.append((scheme, rules))
    return out


def _scheme_and_rule(village, choice: str):
    """The form's rule option `scheme:code` as (scheme, rule code)."""
    scheme_code, _, rule_code = (choice or "").partition(":")
    if not rule_code:
        raise ValidationError("请选择积分项目", errors={"rule_code": ["请选择"]})
    return statements.get_scheme(db(), village=village, code=scheme_code), rule_code


def _unit(event) -> str:
    """What one attendance counts: a person on a party-scheme event, else a household."""
    return "人" if events.event_per_person(db(), event) else "户"


@bp.get("/v/<code>/events")
@signed_in
def events_page(code):
    """The village's events; admins create one here."""
    village = page_village(code, *DOOR)
    can_create = current_actor().has(village, *ORGANISERS)
    return render_template(
        "events/list.html",
        village=village,
        events=events.list_events(db(), village=village),
        can_create=can_create,
        rules=_award_rules(village) if can_create else [],
        groups=org.list_groups(db(), village=village) if can_create else [],
        audiences=events.AUDIENCE_NAMES,
        today=local_date(utcnow()).isoformat(),
    )


def _local(day: str, clock: str) -> datetime:
    try:
        on = date.fromisoformat(day)
        at = time.fromisoformat(clock)
    except ValueError as exc:
        raise ValidationError("请填写正确的日期和时间") from exc
    return datetime.combine(on, at, tzinfo=LOCAL_TZ)


@bp.post("/v/<code>/events")
@signed_in
def create(code):
    """Create an event from the form, then show its page (QR and poster)."""
    village = page_village(code, *ORGANISERS)
    form = request.form
    with form_errors():
        day = form.get("day", "")
        groups = [int(g) for g in form.getlist("group_ids") if g.isdigit() and len(g) < 10]
        scheme, rule_code = _scheme_and_rule(village, form.get("rule_code", ""))
        event = events.create_event(
            db(),
            village=village,
            scheme=scheme,
            actor=current_actor(),
            title=form.get("title", ""),
            place=form.get("place", ""),
            starts_at=_local(day, form.get("start", "")),
            ends_at=_local(day, form.get("end", "")),
            rule_code=rule_code,
            audience=form.get("audience", ""),
            group_ids=groups,
            now=utcnow(),
        )
        page_audit(village, "event.create", event, f"新建活动“{event.title}”", "event")
        return redirect(url_for("event_pages.event_page", code=village.code, event_id=event.id))
    return redirect(url_for("event_pages.events_page", code=village.code))


@bp.get("/v/<code>/events/<int:event_id>")
@signed_in
def event_page(code, event_id):
    """The event: its QR and poster, the door scan box, walk-ins, the list, closing."""
    village, event = _event(code, event_id, *DOOR)
    query = (request.args.get("q") or "").strip()[:50]
    found = events.search_people(db(), village=village, query=query) if query else []
    return render_template(
        "events/event.html",
        village=village,
        event=event,
        groups=events.event_groups(db(), event=event),
        present=events.attendees(db(), event=event),
        audiences=events.AUDIENCE_NAMES,
        methods=events.METHOD_NAMES,
        window=f"{localtime(event.starts_at)}–{event.ends_at.astimezone(LOCAL_TZ):%H:%M}",
        can_close=current_actor().has(village, *ORGANISERS),
        unit=_unit(event),
        query=query,
        found=found,
    )


@bp.get("/v/<code>/events/<int:event_id>/qr.png")
@signed_in
def event_qr_png(code, event_id):
    """The event's QR as a picture for the screen (the poster draws it as vectors)."""
    village, event = _event(code, event_id, *DOOR)
    response = Response(qr.png(actions.qr_url(village, event), box_size=8), mimetype="image/png")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/v/<code>/events/<int:event_id>/poster.pdf")
@signed_in
def event_poster(code, event_id):
    """The printable A4 poster with the event's QR."""
    village, event = _event(code, event_id, *DOOR)
    scheme = db().get(Scheme, event.scheme_id)
    person = events.per_person(scheme)
    try:  # the one rule, not the whole catalog
        _, rule = find_rule(db(), scheme=scheme, code=event.rule_code, on=event.held_on)
    except NotFoundError:
        rule = None
    earns = ""
    if rule is not None:
        value = f" {rule.points} 分" if rule.points else ""
        earns = f"参加可得：{rule.name}{value}（{'党员积分，每人一次' if person else '每户一次'}）"
    audience = events.AUDIENCE_NAMES.get(event.audience, event.audience)
    if event.audience == "groups":
        audience = "、".join(g.name for g in events.event_groups(db(), event=event))
    face = poster.PosterFace(
        village_name=village.name,
        title=event.title,
        when=f"{localtime(event.starts_at)}–{event.ends_at.astimezone(LOCAL_TZ):%H:%M}",
        place=event.place,
        earns=earns,
        audience=audience,
        url=actions.qr_url(village, event),
        once="党员本人扫码签到，每人一次" if person else "每户签到一次",
    )
    response = Response(poster.render(face), mimetype="application/pdf")
    response.headers["Content-Disposition"] = f"inline; filename=event-{event.id}.pdf"
    return response


@bp.post("/v/<code>/events/<int:event_id>/scan")
@signed_in
def door_scan(code, event_id):
    """A card or phone code scanned at the door (a USB scanner submits by Enter)."""
    village, event = _event(code, event_id, *DOOR)
    with form_errors():
        row = actions.door_scan(village, event, request.form.get("code", ""), page_audit)
        flash(_done(village, row), "ok")
    return redirect(url_for("event_pages.event_page", code=village.code, event_id=event.id))


@bp.post("/v/<code>/events/<int:event_id>/walkin")
@signed_in
def walk_in(code, event_id):
    """A walk-in found by name search."""
    village, event = _event(code, event_id, *DOOR)
    with form_errors():
        resident_id = request.form.get("resident_id", "")
        if not resident_id.isdigit() or len(resident_id) > 10:
            raise ValidationError("请选择村民")
        row = actions.walk_in(village, event, int(resident_id), page_audit)
        flash(_done(village, row), "ok")
    return redirect(url_for("event_pages.event_page", code=village.code, event_id=event.id))


@bp.post("/v/<code>/events/<int:event_id>/close")
@signed_in
def close(code, event_id):
    """Close check-in: one group claim for everyone who came, then review and 公示."""
    village, event = _event(code, event_id, *ORGANISERS)
    with form_errors():
        event, batch, claims = actions.close(village, event, page_audit)
        flash(
            f"已结束签到：{len(claims)} {_unit(event)}按“{event.rule_code}”集体计分，进入审核或公示"
            if batch
            else "已结束签到：无人签到，不计分",
            "ok",
        )
    return redirect(url_for("event_pages.event_page", code=village.code, event_id=event.id))


def _number(village, household_id: int) -> str:
    return org.get_household(db(), village=village, household_id=household_id).number


def _done(village, row) -> str:
    """The flash after a check-in: the household, and the person on a party-scheme event."""
    text = f"签到成功：户号 {_number(village, row.household_id)}"
    if row.per_person:
        text += f"，党员 {db().get(Resident, row.resident_id).name}"
    return text


# --- the resident's side -----------------------------------------------------------------------


@bp.post("/v/<code>/events/decode")
@signed_in
def decode(code):
    """Read a QR code in a camera frame (PNG/JPEG body): {"text": … or null}."""
    page_village(code, *DOOR, Role.RESIDENT)
    text, error = qr.decode_frame(request.get_data(cache=False))
    if error:
        return jsonify(text=None, error=error), 400
    return jsonify(text=text)


@bp.route("/v/<code>/events/scan", methods=["GET", "POST"])
@signed_in
def resident_scan(code):
    """扫码签到: the phone's camera reads the event's QR and opens its check-in page."""
    village = page_village(code, Role.RESIDENT)
    if request.method == "POST":
        with form_errors():
            text = request.form.get("code", "")
            actions.event_from_scan(village, text)  # refuse here what the join page would
            token = event_codes.token_of_scan(text)
            return redirect(url_for("event_pages.join", code=village.code, token=token))
    return render_template("events/scan.html", village=village)


@bp.route("/v/<code>/events/join/<token>", methods=["GET", "POST"])
@signed_in
def join(code, token):
    """The page an event's QR opens: the event, and one tap to check in."""
    village = org.get_village(db(), code)
    event = actions.event_from_scan(village, token)
    if current_actor().roles_in(village):
        g.village = village  # the menu of the signed-in user's own village
    done = None
    if request.method == "POST":
        with form_errors():
            done = actions.self_checkin(village, event, page_audit)
    return render_template(
        "events/join.html",
        village=village,
        event=event,
        done=done,
        window=f"{localtime(event.starts_at)}–{event.ends_at.astimezone(LOCAL_TZ):%H:%M}",
        is_resident=current_actor().resident_id is not None,
        per_person=events.event_per_person(db(), event),
    )
