"""The simulator as GitLab's OAuth 2 provider (doc/api/oauth2.md): authorize (as the world's signed-in
user, no login form), the token endpoint with PKCE S256 checks and refresh-token rotation."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, jsonify, redirect, request

from scripts.gitlab_sim.world import World


def _error(error: str, description: str, status: int = 400) -> tuple[Response, int]:
    return jsonify(error=error, error_description=description), status


def _client(world: World) -> dict[str, Any] | None:
    """The OAuth application authenticating the call: HTTP Basic (client_secret_basic) or form fields."""
    auth = request.authorization
    client_id = auth.username if auth else request.form.get("client_id")
    secret = auth.password if auth else request.form.get("client_secret")
    app = world.oauth_apps.get(client_id or "")
    return app if app and secrets.compare_digest(app["secret"], secret or "") else None


def _issue(world: World, user_id: int, scopes: list[str]) -> dict[str, Any]:
    access, refresh = secrets.token_hex(32), secrets.token_hex(32)
    now = int(time.time())
    world.oauth_tokens[access] = {
        "token": access,
        "user_id": user_id,
        "scopes": scopes,
        "created_at": now,
        "expires_in": world.oauth_lifetime,
    }
    world.refresh_tokens[refresh] = {"access": access, "user_id": user_id, "scopes": scopes}
    return {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": world.oauth_lifetime,
        "refresh_token": refresh,
        "scope": " ".join(scopes),
        "created_at": now,
    }


def register(sim: Flask, world: World) -> None:
    @sim.get("/oauth/authorize")
    def authorize() -> Any:
        app = world.oauth_apps.get(request.args.get("client_id", ""))
        redirect_uri = request.args.get("redirect_uri", "")
        if app is None or redirect_uri != app["redirect_uri"]:
            return _error("invalid_client", "Client authentication failed or redirect URI mismatch", 401)
        state = request.args.get("state", "")
        if world.signed_in_user is None:  # the user pressed "Deny"
            return redirect(f"{redirect_uri}?{urlencode({'error': 'access_denied', 'state': state})}")
        if request.args.get("code_challenge_method") != "S256" or not request.args.get("code_challenge"):
            return redirect(f"{redirect_uri}?{urlencode({'error': 'invalid_request', 'state': state})}")
        user_id = next(u["id"] for u in world.users.values() if u["username"] == world.signed_in_user)
        code = secrets.token_hex(16)
        world.oauth_codes[code] = {
            "client_id": request.args["client_id"],
            "redirect_uri": redirect_uri,
            "challenge": request.args["code_challenge"],
            "user_id": user_id,
            "scopes": request.args.get("scope", "read_api").split(),
            "issued": time.time(),
        }
        return redirect(f"{redirect_uri}?{urlencode({'code': code, 'state': state})}")

    @sim.post("/oauth/token")
    def token() -> Any:
        app = _client(world)
        if app is None:
            return _error("invalid_client", "Client authentication failed", 401)
        grant = request.form.get("grant_type")
        if grant == "authorization_code":
            code = world.oauth_codes.pop(request.form.get("code", ""), None)  # used once
            verifier = request.form.get("code_verifier", "")
            challenge = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            )
            if (
                code is None
                or code["redirect_uri"] != request.form.get("redirect_uri")
                or time.time() - code["issued"] > 600
                or not secrets.compare_digest(code["challenge"], challenge)
            ):
                return _error(
                    "invalid_grant", "The provided authorization grant is invalid, expired, revoked"
                )
            return jsonify(_issue(world, code["user_id"], code["scopes"]))
        if grant == "refresh_token":
            time.sleep(world.refresh_delay)
            old = world.refresh_tokens.pop(request.form.get("refresh_token", ""), None)
            if old is None:
                return _error(
                    "invalid_grant", "The provided authorization grant is invalid, expired, revoked"
                )
            world.oauth_tokens.pop(old["access"], None)  # rotation: the previous access token is revoked
            return jsonify(_issue(world, old["user_id"], old["scopes"]))
        return _error("unsupported_grant_type", "The authorization grant type is not supported")
