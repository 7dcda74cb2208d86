"""红黑榜 pages: the admin drafts, edits, approves, publishes and withdraws boards; the public
archive and a month's board laid out to print."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from api.db import db
from api.web.helpers import id_arg, page_audit, page_village, signed_in, status_text
from api.web.identity import current_actor
from points import org
from points.db import utcnow
from points.errors import PointsError
from points.models.org import Role
from points.periods import local_date, month_key
from points.periods import period_label as month_label

bp = Blueprint("board_pages", __name__, template_folder="templates")


@bp.route("/v/<code>/boards", methods=["GET", "POST"])
@signed_in
def boards(code):
    """红黑榜 for the admin: draft a month, remove entries with a reason, approve, publish."""
    from points import boards as board_domain

    village = page_village(code, Role.ADMIN)
    actor = current_actor()
    if request.method == "POST":
        form = request.form
        action = form.get("action")
        try:
            if action == "draft":
                board = board_domain.draft_board(
                    db(),
                    village=village,
                    month=form.get("month", ""),
                    now=utcnow(),
                    actor_id=actor.user_id,
                )
                page_audit(village, "board.draft", board, f"起草 {board.month} 红黑榜", "board")
            else:
                board = board_domain.get_board(
                    db(), village=village, board_id=int(form.get("board_id", 0))
                )
                if action == "remove":
                    board_domain.remove_entry(
                        db(),
                        board=board,
                        actor=actor,
                        entry_id=int(form.get("entry_id", 0)),
                        reason=form.get("reason", ""),
                    )
                elif action == "approve":
                    board_domain.approve_board(db(), board=board, actor=actor, now=utcnow())
                elif action == "publish":
                    board_domain.publish_board(db(), board=board, actor=actor, now=utcnow())
                elif action == "withdraw":
                    board_domain.withdraw_board(
                        db(), board=board, actor=actor, reason=form.get("reason", ""), now=utcnow()
                    )
                else:
                    raise PointsError("不支持的操作")
                page_audit(
                    village, f"board.{action}", board, f"{board.month} 红黑榜：{action}", "board"
                )
            flash(f"{month_label(board.month)}红黑榜已更新（{status_text(board.status)}）", "ok")
            return redirect(url_for("board_pages.boards", code=village.code, board=board.id))
        except (PointsError, ValueError) as exc:
            db().rollback()
            flash(getattr(exc, "message", None) or "输入有误", "error")
            return redirect(url_for("board_pages.boards", code=village.code))
    items = board_domain.list_boards(db(), village=village, public=False)
    chosen = id_arg("board") or (items[0].id if items else None)
    view = None
    if chosen:
        view = board_domain.staff_view(
            db(), board_domain.get_board(db(), village=village, board_id=chosen)
        )
    last_month = board_domain.month_shift(month_key(local_date(utcnow())), -1)
    return render_template(
        "staff/boards.html",
        village=village,
        items=items,
        view=view,
        sections=board_domain.sections(view) if view else [],
        last_month=last_month,
    )


@bp.get("/public/<code>/boards")
def boards_archive(code):
    """Every board published so far, with withdrawn and corrected ones marked."""
    from points import boards

    village = org.get_village(db(), code)
    items = boards.list_boards(db(), village=village)
    return render_template("public/boards.html", village=village, items=items)


@bp.get("/public/<code>/board/<month>")
def board(code, month):
    """A month's board as published, laid out to print on A4 or A3 in large type."""
    from flask import abort, request

    from points import boards

    village = org.get_village(db(), code)
    wanted = id_arg("id")
    shown = (
        boards.get_public_board(db(), village=village, board_id=wanted)
        if wanted
        else boards.month_board(db(), village=village, month=month)
    )
    if shown is None or shown.month != month:
        abort(404)
    return render_template(
        "public/board.html",
        village=village,
        board=shown,
        view=(view := boards.public_view(shown)),
        sections=boards.sections(view),
        privacy=boards.privacy_label(shown.privacy_mode),
        size="a3" if request.args.get("size") == "a3" else "a4",
    )
