"""Accounts, sessions, CSRF and API tokens.

Roles: ``admin`` (the ministry: every site) and ``agency`` (the sites of its own agency).
Anonymous visitors see only the pages named in ``GIAMSAT_PUBLIC_PAGES``.

- Passwords: argon2id (``argon2-cffi``, memory-hard, its default cost parameters).
- Session: a cookie ``gs_session`` holding ``{"uid", "csrf"}`` signed with
  ``itsdangerous`` under a key derived from the installation secret; ``HttpOnly``,
  ``SameSite=Lax``, ``Secure`` when the request or ``GIAMSAT_PUBLIC_URL`` is https; valid
  12 hours. The user row is re-read on every request, so disabling an account takes effect
  at once. No session table: nothing to clean up.
- Revocation: the cookie also holds ``ep``, the user's ``session_epoch`` when it was
  issued; a cookie whose epoch is not the user's current one is no session. Signing out,
  a password change (``giamsat user add`` on an existing name) and ``giamsat user
  disable`` bump the epoch, so every cookie issued before stops working — signing out
  ends the user's sessions on every browser. API tokens are not sessions: they stop with
  ``disable`` (the account), not with a sign-out or a password change.
- CSRF: every form carries ``csrf_token`` equal to the session's random ``csrf`` (compared in
  constant time). The login form gets a pre-session cookie holding only the token.
- API tokens: 32 random bytes (``gs_…``), shown once, stored as SHA-256 (a high-entropy
  token needs no slow hash), sent as ``Authorization: Bearer``; they act as their user.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from collector.store import Database

COOKIE = "gs_session"
SESSION_AGE = 12 * 3600
ROLES = ("admin", "agency")
_hasher = PasswordHasher()
# verifying against this keeps the time of "no such user" equal to "wrong password"
_DUMMY = _hasher.hash("giamsat-dummy-password")


class AuthError(ValueError):
    """A user or token could not be created; the message says why."""


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str
    agency_code: str
    epoch: int = 0  # users.session_epoch: sessions issued at another epoch are void

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def may_see_agency(self, code: str) -> bool:
        return self.is_admin or self.agency_code == code


def hash_password(password: str) -> str:
    return _hasher.hash(password)


async def add_user(db: Database, username: str, password: str, role: str,
                   agency_code: str = "") -> User:
    username = username.strip()
    if not username or len(username) > 100:
        raise AuthError("username: 1 to 100 characters")
    if len(password) < 10:
        raise AuthError("password: at least 10 characters")
    if role not in ROLES:
        raise AuthError(f"role: one of {', '.join(ROLES)}")
    agency_code = agency_code.strip().upper() if role == "agency" else ""
    if role == "agency":
        found = await db.fetch_one("SELECT code FROM agencies WHERE code = :c", {"c": agency_code})
        if not found:
            raise AuthError(f"agency: unknown agency code {agency_code!r}")
    await db.execute(
        "INSERT INTO users (username, pw_hash, role, agency_code, created_ms) "
        "VALUES (:u, :h, :r, :a, :t) ON CONFLICT (username) DO UPDATE SET "
        "pw_hash = excluded.pw_hash, role = excluded.role, agency_code = excluded.agency_code, "
        "session_epoch = users.session_epoch + 1",  # a new password ends old sessions
        {"u": username, "h": hash_password(password), "r": role, "a": agency_code,
         "t": int(time.time() * 1000)},
    )
    user = await user_by_name(db, username)
    assert user is not None
    return user


def _user(row: dict[str, Any] | None) -> User | None:
    if not row or row.get("disabled"):
        return None
    return User(int(row["id"]), row["username"], row["role"], row["agency_code"],
                int(row.get("session_epoch") or 0))


COLUMNS = "id, username, role, agency_code, disabled, session_epoch"


async def user_by_name(db: Database, username: str) -> User | None:
    return _user(await db.fetch_one(
        f"SELECT {COLUMNS} FROM users WHERE username = :u", {"u": username}))


async def user_by_id(db: Database, uid: int) -> User | None:
    return _user(await db.fetch_one(f"SELECT {COLUMNS} FROM users WHERE id = :i", {"i": uid}))


async def revoke_sessions(db: Database, uid: int) -> None:
    """Void every session cookie issued to the user so far."""
    await db.execute("UPDATE users SET session_epoch = session_epoch + 1 WHERE id = :i",
                     {"i": uid})


async def set_disabled(db: Database, username: str, disabled: bool = True) -> bool:
    """Disable (or enable) an account; disabling also voids its sessions. False if no
    such user."""
    n = await db.execute(
        "UPDATE users SET disabled = :d, session_epoch = session_epoch + 1 "
        "WHERE username = :u", {"d": int(disabled), "u": username.strip()})
    return bool(n)


async def authenticate(db: Database, username: str, password: str) -> User | None:
    row = None if "\x00" in username else await db.fetch_one(  # NUL: PostgreSQL refuses it
        f"SELECT {COLUMNS}, pw_hash FROM users WHERE username = :u", {"u": username.strip()})
    try:
        _hasher.verify(row["pw_hash"] if row else _DUMMY, password)
    except (VerificationError, InvalidHashError):
        return None
    return _user(row)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def add_token(db: Database, username: str, label: str = "") -> str:
    user = await user_by_name(db, username)
    if user is None:
        raise AuthError(f"user: no active user {username!r}")
    token = "gs_" + secrets.token_urlsafe(32)
    await db.execute(
        "INSERT INTO api_tokens (token_hash, user_id, label, created_ms) "
        "VALUES (:h, :u, :l, :t)",
        {"h": _token_hash(token), "u": user.id, "l": label, "t": int(time.time() * 1000)},
    )
    return token


async def user_for_token(db: Database, token: str) -> User | None:
    row = await db.fetch_one(
        "SELECT u.id, u.username, u.role, u.agency_code, u.disabled, u.session_epoch "
        "FROM api_tokens t "
        "JOIN users u ON u.id = t.user_id WHERE t.token_hash = :h", {"h": _token_hash(token)})
    return _user(row)


class Sessions:
    """Signed session cookies; one per app, keyed from the installation secret."""

    def __init__(self, secret: bytes, secure: bool = False) -> None:
        key = hmac.new(secret, b"giamsat reports session", hashlib.sha256).hexdigest()
        self.signer = URLSafeTimedSerializer(key, salt="gs-session")
        self.secure = secure

    def load(self, request: Request) -> dict[str, Any]:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return {}
        try:
            data = self.signer.loads(raw, max_age=SESSION_AGE)
        except BadSignature:
            return {}
        return data if isinstance(data, dict) else {}

    def save(self, request: Request, response: Response, data: dict[str, Any]) -> None:
        response.set_cookie(
            COOKIE, self.signer.dumps(data), max_age=SESSION_AGE, path="/", httponly=True,
            samesite="lax", secure=self.secure or request.url.scheme == "https",
        )

    def clear(self, request: Request, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax",
                               secure=self.secure or request.url.scheme == "https")


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def csrf_ok(session: dict[str, Any], sent: object) -> bool:
    expected = session.get("csrf")
    return isinstance(expected, str) and isinstance(sent, str) and bool(sent) and \
        hmac.compare_digest(expected, sent)
