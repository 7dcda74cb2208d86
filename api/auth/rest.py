"""Sign-in and the signed-in user."""

from __future__ import annotations

from flask_smorest import Blueprint

from api.auth.schemas import MeSchema, TokenRequestSchema, TokenSchema
from api.rest import ApiView
from api.web.identity import (
    authenticate,
    current_actor,
    issue_token,
    limiter,
    revoke_current_token,
    signin_limit,
)
from points.audit import record
from points.db import utcnow

blp = Blueprint("auth", __name__, url_prefix="/api/v1", description="登录与令牌")


@blp.route("/auth/token")
class Token(ApiView):
    decorators = [limiter.limit(signin_limit, methods=["POST"])]

    @blp.arguments(TokenRequestSchema)
    @blp.response(201, TokenSchema)
    @blp.alt_response(401, description="账号或密码错误")
    @blp.alt_response(429, description="尝试次数过多")
    def post(self, data):
        """Sign in (staff: username + password; residents: phone + PIN) and get a token."""
        user = authenticate(
            username=data.get("username"),
            password=data.get("password"),
            phone=data.get("phone"),
            pin=data.get("pin"),
        )
        raw, token = issue_token(user, name=data.get("name", ""))
        from api.db import db
        from api.rest import client_ip

        record(
            db(),
            actor_id=user.id,
            village_id=None,
            action="auth.signin",
            object_type="user",
            object_id=user.id,
            summary="登录并获取令牌",
            remote_addr=client_ip(),
            now=utcnow(),
        )
        return {"token": raw, "expires_at": token.expires_at, "user_id": user.id}

    @blp.response(204)
    @blp.alt_response(401, description="未登录")
    def delete(self):
        """Revoke the token this request is made with (sign out)."""
        current_actor()
        revoke_current_token()


@blp.route("/me")
class Me(ApiView):
    @blp.response(200, MeSchema)
    @blp.alt_response(401, description="未登录")
    def get(self):
        """Who am I: my roles and scopes, and my household if I am a resident."""
        actor = current_actor()
        return {
            "user_id": actor.user_id,
            "name": actor.name,
            "grants": list(actor.grants),
            "household_id": actor.household_id,
            "resident_id": actor.resident_id,
        }
