"""红黑榜: draft, edit, approve, publish, withdraw, appeals; the public archive, poster and xlsx."""

from __future__ import annotations

from flask import Response
from flask_smorest import Blueprint

from api.boards.files import board_xlsx, poster_pdf
from api.boards.schemas import (
    AppealInSchema,
    AppealQuerySchema,
    AppealResolveInSchema,
    AppealSchema,
    BoardSchema,
    BoardSummarySchema,
    DraftInSchema,
    NominationInSchema,
    PartyMemberSchema,
    PartyQuerySchema,
    PartyStandingSchema,
    PosterQuerySchema,
    PublicBoardSchema,
    ReasonInSchema,
)
from api.db import db
from api.rest import ApiView, audit, documented_errors, village_for
from api.web.identity import current_actor
from points import boards, org
from points.db import utcnow
from points.errors import NotFoundError
from points.models.boards import BoardAppeal
from points.models.org import Role

blp = Blueprint("boards", __name__, url_prefix="/api/v1", description="红黑榜")

STAFF = (Role.ADMIN, Role.REVIEWER, Role.RECORDER, Role.CLERK)
REVIEWERS = (Role.ADMIN, Role.REVIEWER)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _doc(*codes):
    return documented_errors(blp, *codes)


def _board(code, board_id, *roles):
    village = village_for(code, *roles)
    return village, boards.get_board(db(), village=village, board_id=board_id)


def _admin_step(code, board_id, action, summary, fn, **kwargs):
    """Run one admin step on a board, audit it, and return the board as staff see it."""
    village, board = _board(code, board_id, Role.ADMIN)
    fn(db(), board=board, actor=current_actor(), **kwargs)
    audit(village, action, board, summary.format(board=board))
    db().refresh(board)
    return boards.staff_view(db(), board)


@blp.route("/villages/<code>/boards")
class Boards(ApiView):
    @blp.response(200, BoardSummarySchema(many=True))
    @_doc()
    def get(self, code):
        """List the village's boards, drafts included, newest month first."""
        village = village_for(code, *STAFF)
        return boards.list_boards(db(), village=village, public=False)

    @blp.arguments(DraftInSchema)
    @blp.response(201, BoardSchema)
    @_doc(401, 403, 404, 422)
    def post(self, data, code):
        """Draft a past month's board from posted entries (the scheduler does it on the 1st)."""
        village = village_for(code, Role.ADMIN)
        board = boards.draft_board(
            db(),
            village=village,
            month=data["month"],
            now=utcnow(),
            actor_id=current_actor().user_id,
        )
        audit(village, "board.draft", board, f"生成 {board.month} 红黑榜草稿")
        return boards.staff_view(db(), board)


@blp.route("/villages/<code>/boards/<int:board_id>")
class BoardItem(ApiView):
    @blp.response(200, BoardSchema)
    @_doc()
    def get(self, code, board_id):
        """Show a board with real names, public names and removed entries (staff only)."""
        _, board = _board(code, board_id, *STAFF)
        return boards.staff_view(db(), board)


@blp.route("/villages/<code>/boards/<int:board_id>/nominations")
class BoardNominations(ApiView):
    @blp.arguments(NominationInSchema)
    @blp.response(201, BoardSchema)
    @_doc(401, 403, 404, 409, 422)
    def post(self, data, code, board_id):
        """Add a nomination to a draft's 红榜."""
        return _admin_step(
            code,
            board_id,
            "board.nominate",
            "{board.month} 红榜增加推荐",
            boards.add_nomination,
            **data,
        )


@blp.route("/villages/<code>/boards/<int:board_id>/entries/<int:entry_id>/remove")
class BoardEntryRemove(ApiView):
    @blp.arguments(ReasonInSchema)
    @blp.response(200, BoardSchema)
    @_doc(401, 403, 404, 409, 422)
    def post(self, data, code, board_id, entry_id):
        """Take an entry off a draft, with a reason kept on record."""
        return _admin_step(
            code,
            board_id,
            "board.remove_entry",
            "{board.month} 榜单移除条目 #" + str(entry_id),
            boards.remove_entry,
            entry_id=entry_id,
            reason=data["reason"],
        )


@blp.route("/villages/<code>/boards/<int:board_id>/approve")
class BoardApprove(ApiView):
    @blp.response(200, BoardSchema)
    @_doc(401, 403, 404, 409)
    def post(self, code, board_id):
        """Approve a draft; it can then only be published."""
        return _admin_step(
            code,
            board_id,
            "board.approve",
            "审定 {board.month} 红黑榜",
            boards.approve_board,
            now=utcnow(),
        )


@blp.route("/villages/<code>/boards/<int:board_id>/publish")
class BoardPublish(ApiView):
    @blp.response(200, BoardSchema)
    @_doc(401, 403, 404, 409)
    def post(self, code, board_id):
        """Publish an approved board: names frozen per privacy mode, ledger head printed."""
        return _admin_step(
            code,
            board_id,
            "board.publish",
            "发布 {board.month} 红黑榜",
            boards.publish_board,
            now=utcnow(),
        )


@blp.route("/villages/<code>/boards/<int:board_id>/withdraw")
class BoardWithdraw(ApiView):
    @blp.arguments(ReasonInSchema)
    @blp.response(200, BoardSchema)
    @_doc(401, 403, 404, 409, 422)
    def post(self, data, code, board_id):
        """Withdraw a published board; a notice with the reason stays visible."""
        return _admin_step(
            code,
            board_id,
            "board.withdraw",
            "撤回 {board.month} 红黑榜",
            boards.withdraw_board,
            reason=data["reason"],
            now=utcnow(),
        )


@blp.route("/villages/<code>/boards/<int:board_id>/entries/<int:entry_id>/appeals")
class BoardAppeals(ApiView):
    @blp.arguments(AppealInSchema)
    @blp.response(201, AppealSchema)
    @_doc(401, 403, 404, 409, 422)
    def post(self, data, code, board_id, entry_id):
        """Appeal an entry about my household on a published board."""
        village, board = _board(code, board_id, Role.RESIDENT)
        item = boards.appeal(
            db(),
            board=board,
            entry_id=entry_id,
            actor=current_actor(),
            reason=data["reason"],
            now=utcnow(),
        )
        audit(village, "board.appeal", item, f"对 {board.month} 榜单条目提出申诉", "board_appeal")
        return item


@blp.route("/villages/<code>/board-appeals")
class AppealList(ApiView):
    @blp.arguments(AppealQuerySchema, location="query")
    @blp.response(200, AppealSchema(many=True))
    @_doc(401, 403, 404, 422)
    def get(self, args, code):
        """List appeals against board entries, newest first."""
        village = village_for(code, *REVIEWERS)
        return boards.list_appeals(db(), village=village, status=args.get("status"))


@blp.route("/villages/<code>/board-appeals/<int:appeal_id>/resolve")
class AppealResolve(ApiView):
    @blp.arguments(AppealResolveInSchema)
    @blp.response(200, AppealSchema)
    @_doc(401, 403, 404, 409, 422)
    def post(self, data, code, appeal_id):
        """Resolve an appeal: upheld publishes a correction that supersedes the board."""
        village = village_for(code, *REVIEWERS)
        item = db().get(BoardAppeal, appeal_id)
        if item is None or item.village_id != village.id:
            raise NotFoundError("找不到该申诉")
        result = boards.resolve_appeal(
            db(),
            appeal=item,
            actor=current_actor(),
            uphold=data["uphold"],
            resolution=data["resolution"],
            now=utcnow(),
        )
        audit(
            village,
            "board.appeal_resolve",
            item,
            f"申诉{'成立，已发布更正榜' if data['uphold'] else '不成立'}",
            "board_appeal",
        )
        return result


# --- public: no sign-in -----------------------------------------------------------------------


def _public(code, board_id):
    village = org.get_village(db(), code)
    return village, boards.get_public_board(db(), village=village, board_id=board_id)


@blp.route("/public/<code>/boards")
class PublicBoards(ApiView):
    @blp.response(200, BoardSummarySchema(many=True))
    @blp.alt_response(404, description="找不到")
    def get(self, code):
        """The archive of published, withdrawn and superseded boards (no sign-in needed)."""
        village = org.get_village(db(), code)
        return boards.list_boards(db(), village=village)


@blp.route("/public/<code>/boards/<int:board_id>")
class PublicBoard(ApiView):
    @blp.response(200, PublicBoardSchema)
    @blp.alt_response(404, description="找不到")
    def get(self, code, board_id):
        """A board as published (a withdrawn one shows only its notice)."""
        return boards.public_view(_public(code, board_id)[1])


def _download(code, board_id):
    village, board = _public(code, board_id)
    if board.status == "withdrawn":
        raise NotFoundError("该榜单已撤回")
    return village, board


@blp.route("/public/<code>/boards/<int:board_id>/poster.pdf")
class PublicPoster(ApiView):
    @blp.arguments(PosterQuerySchema, location="query")
    @blp.response(200, content_type="application/pdf", description="A4/A3 张贴海报")
    @blp.alt_response(404, description="找不到")
    @blp.alt_response(422, description="参数有误")
    def get(self, args, code, board_id):
        """The board as a poster for the village notice board (A4 or A3, large type)."""
        village, board = _download(code, board_id)
        response = Response(
            poster_pdf(village, board, size=args["size"]), mimetype="application/pdf"
        )
        response.headers["Content-Disposition"] = (
            f'inline; filename="board-{village.code}-{board.month}.pdf"'
        )
        return response


@blp.route("/public/<code>/boards/<int:board_id>/board.xlsx")
class PublicXlsx(ApiView):
    @blp.response(200, content_type=XLSX, description="Excel 台账")
    @blp.alt_response(404, description="找不到")
    def get(self, code, board_id):
        """The board as an Excel sheet for the paper 台账."""
        village, board = _download(code, board_id)
        response = Response(board_xlsx(village, board), mimetype=XLSX)
        response.headers["Content-Disposition"] = (
            f'attachment; filename="board-{village.code}-{board.month}.xlsx"'
        )
        return response


@blp.route("/villages/<code>/party-members")
class PartyBranch(ApiView):
    @blp.arguments(PartyQuerySchema, location="query")
    @blp.response(200, PartyStandingSchema(many=True))
    @_doc(401, 403, 404, 422)
    def get(self, args, code):
        """The branch's party members: each one's score and stars for the period, best first."""
        village = village_for(code, *REVIEWERS)
        return boards.branch_standings(
            db(), village=village, actor=current_actor(), now=utcnow(), period=args.get("period")
        )


@blp.route("/villages/<code>/party-members/<int:resident_id>")
class PartyMember(ApiView):
    @blp.arguments(PartyQuerySchema, location="query")
    @blp.response(200, PartyMemberSchema)
    @_doc(401, 403, 404, 422)
    def get(self, args, code, resident_id):
        """A party member's score, stars and history (the member, the 村两委, the review group)."""
        village = village_for(code, *REVIEWERS, Role.RESIDENT)
        return boards.member_standing(
            db(),
            village=village,
            resident_id=resident_id,
            actor=current_actor(),
            now=utcnow(),
            period=args.get("period"),
        )
