"""The example app's own accounts: a users table, scrypt passwords, session tokens.

Nothing here knows about tokenbank; it is the shape of any app's sign-up and sign-in.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
from dataclasses import dataclass

from fastapi import Header, HTTPException

DB_PATH = os.environ.get("EXAMPLE_DB", "example.db")


def connect() -> sqlite3.Connection:
    conn = sqlite3.connect(DB_PATH)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, username TEXT UNIQUE NOT NULL,"
        " password_hash BLOB NOT NULL, salt BLOB NOT NULL)"
    )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS sessions (token TEXT PRIMARY KEY,"
        " user_id INTEGER NOT NULL REFERENCES users(id))"
    )
    return conn


@dataclass(frozen=True)
class User:
    id: int
    username: str


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)


def sign_up(username: str, password: str) -> tuple[User, str]:
    salt = secrets.token_bytes(16)
    with connect() as conn:
        try:
            cur = conn.execute(
                "INSERT INTO users (username, password_hash, salt) VALUES (?, ?, ?)",
                (username, _hash(password, salt), salt),
            )
        except sqlite3.IntegrityError:
            raise HTTPException(409, "username taken") from None
        user = User(int(cur.lastrowid or 0), username)
    return user, _new_session(user.id)


def sign_in(username: str, password: str) -> tuple[User, str]:
    with connect() as conn:
        row = conn.execute(
            "SELECT id, password_hash, salt FROM users WHERE username = ?", (username,)
        ).fetchone()
    if row is None or not hmac.compare_digest(row[1], _hash(password, row[2])):
        raise HTTPException(401, "wrong username or password")
    return User(row[0], username), _new_session(row[0])


def _new_session(user_id: int) -> str:
    token = secrets.token_urlsafe(32)
    with connect() as conn:
        conn.execute("INSERT INTO sessions (token, user_id) VALUES (?, ?)", (token, user_id))
    return token


def current_user(authorization: str = Header(default="")) -> User:
    """Dependency: the signed-in user (``Authorization: Bearer <session token>``)."""
    token = authorization.removeprefix("Bearer ").strip()
    with connect() as conn:
        row = conn.execute(
            "SELECT users.id, users.username FROM sessions JOIN users ON users.id = user_id"
            " WHERE token = ?", (token,),
        ).fetchone()
    if row is None:
        raise HTTPException(401, "sign in first")
    return User(row[0], row[1])
