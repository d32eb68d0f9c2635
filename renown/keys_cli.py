"""``renown keys``: create, list and revoke the HTTP API's keys (docs/api.md).

    renown keys create --owner NAME --role reader|moderator|admin [--json]
    renown keys list [--active] [--json]
    renown keys revoke ID [--json]

A key is printed once, by ``create``, and never again: the database keeps only its hash
(storage.keys_repo). Errors a user can cause are :class:`storage.keys_repo.ApiKeyError`
(a ``ValueError`` or ``LookupError``); ``renown.cli.main`` prints them on one line and
exits 2, like every other command.

Kept out of renown/cli.py so that the command and its parser live together; the CLI
registers it with :func:`add_parser`.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from renown import bootstrap
from renown.report import format_table
from renown.settings import Settings, load_settings
from storage import keys_repo
from storage.keys_repo import ROLES, ApiKeyError
from storage.models import ApiKey
from storage.uow import UnitOfWork

__all__ = ["ApiKeyError", "add_parser", "cmd_keys", "key_json"]

NOT_STORED = (
    "Store this key now (a secret store, not a file in a repository): Renown keeps only "
    "its hash and cannot show it again. Lost: revoke it and create another."
)


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        getattr(args, "config", None),
        database_url=getattr(args, "database_url", None),
        kafka_bootstrap=getattr(args, "bootstrap", None),
    )


def _utc(at: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time stored here is UTC."""
    if at is None:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _iso(at: datetime | None) -> str | None:
    at = _utc(at)
    return None if at is None else at.isoformat(timespec="seconds")


def _short(at: datetime | None) -> str | None:
    at = _utc(at)
    return None if at is None else at.strftime("%Y-%m-%d %H:%M:%SZ")


def key_json(key: ApiKey) -> dict[str, Any]:
    """A key as ``list --json`` shows it: everything but a secret (which is not stored)."""
    return {
        "id": key.id,
        "prefix": keys_repo.display_prefix(key),
        "owner": key.owner,
        "role": key.role,
        "created_at": _iso(key.created_at),
        "last_used_at": _iso(key.last_used_at),
        "revoked_at": _iso(key.revoked_at),
    }


def _row(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "prefix": keys_repo.display_prefix(key),
        "owner": key.owner,
        "role": key.role,
        "created": _short(key.created_at),
        "last used": _short(key.last_used_at),
        "revoked": _short(key.revoked_at),
    }


def cmd_keys(args: argparse.Namespace) -> int:
    if args.keys_action == "generate":  # no database: the key goes to a secret store
        print(keys_repo.generate_secret())
        return 0
    entries = _read_key_file(args.file) if args.keys_action == "import" else []
    db = bootstrap.open_database(_settings(args))
    try:
        if args.keys_action == "create":
            with UnitOfWork(db.writer_sessions) as uow:
                key, secret = keys_repo.create_key(uow.session, args.owner, args.role)
                uow.commit()
            if args.json:
                print(json.dumps({**key_json(key), "key": secret}))
            else:
                print(f"created API key #{key.id} for {key.owner}, role {key.role}:")
                print()
                print(f"    {secret}")
                print()
            print(NOT_STORED, file=sys.stderr)
        elif args.keys_action == "import":
            with UnitOfWork(db.writer_sessions) as uow:  # all or none: a bad line, no key
                done = []
                for line, owner, role, secret in entries:
                    try:
                        done.append((*keys_repo.import_key(uow.session, owner, role, secret),
                                     line))  # fmt: skip
                    except keys_repo.InvalidKeyRequest as exc:
                        raise keys_repo.InvalidKeyRequest(f"{args.file}:{line}: {exc}") from None
                uow.commit()
            for key, created, line in done:
                state = "registered" if created else "already registered"
                if key.revoked_at is not None:  # a file line does not bring a key back
                    state = "revoked (still refused; remove the line)"
                print(f"line {line}: {state} as API key #{key.id} ({key.owner}, {key.role})")
            print(f"{sum(c for _, c, _ in done)} new key(s), {len(done)} in the file")
        elif args.keys_action == "list":
            with UnitOfWork(db.sessions) as uow:  # read: the rows expire when it ends
                keys = keys_repo.list_keys(uow.session, include_revoked=not args.active)
                listed = [key_json(k) for k in keys] if args.json else [_row(k) for k in keys]
            if args.json:
                print(json.dumps(listed))
            else:
                print(format_table(listed))
                revoked = sum(k["revoked"] is not None for k in listed)
                print(f"{len(listed)} key(s), {revoked} revoked")
        else:  # revoke
            with UnitOfWork(db.writer_sessions) as uow:
                before = keys_repo.get_key(uow.session, args.id).revoked_at
                key = keys_repo.revoke_key(uow.session, args.id)
                uow.commit()
            if args.json:
                print(json.dumps(key_json(key)))
            elif before is not None:
                print(f"API key #{key.id} ({key.owner}) was already revoked at {_short(before)}")
            else:
                print(
                    f"revoked API key #{key.id} ({keys_repo.display_prefix(key)}, {key.owner}, "
                    f"{key.role}): refused from the next request on"
                )
    finally:
        db.close()
    return 0


def _read_key_file(path: str) -> list[tuple[int, str, str, str]]:
    """``owner role key`` per line (``#`` comments, blank lines): (line, owner, role, key).
    Every line is checked before anything is written; the key never appears in an error."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise keys_repo.InvalidKeyRequest(f"cannot read {path}: {exc.strerror}") from None
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 3:
            raise keys_repo.InvalidKeyRequest(
                f"{path}:{number}: expected 'owner role key', got {len(parts)} field(s)"
            )
        owner, role, secret = parts
        # Checked here, without quoting a field: fields in the wrong order would otherwise
        # put the key itself into the error message (and the log that keeps it).
        try:
            keys_repo.check_owner_and_role(owner, role)
        except keys_repo.InvalidKeyRequest:
            raise keys_repo.InvalidKeyRequest(
                f"{path}:{number}: expected 'owner role key': the owner a name (letters, "
                f"digits, ._@+-), the role one of {', '.join(ROLES)}, then the key"
            ) from None
        out.append((number, owner, role, secret))
    return out  # none is fine: a deployment's key file before its first client


def _key_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a key id (a number)") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a key id (1 or more)")
    return value


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``renown keys`` on the CLI's subparsers (``parser.add_subparsers()``)."""
    help_ = "API keys: create (shown once), generate and import, list, revoke"
    p: argparse.ArgumentParser = sub.add_parser("keys", help=help_, description=help_)
    p.set_defaults(func=cmd_keys)
    actions = p.add_subparsers(dest="keys_action", required=True)

    q = actions.add_parser(
        "create",
        help="create a key and print it, once",
        description="Create a key and print it, once: only its hash is stored.",
    )
    q.add_argument("--owner", required=True, help="who holds it: a person or marketplace (audited)")
    q.add_argument(
        "--role",
        required=True,
        choices=ROLES,
        help="reader: higher read limits; moderator: moderation calls; admin: everything",
    )
    q.add_argument("--json", action="store_true")

    actions.add_parser(
        "generate",
        help="print a new key without storing it (for a secret store; then `keys import`)",
    )
    q = actions.add_parser(
        "import",
        help="register keys kept in a secret store: a file of 'owner role key' lines",
        description="Register keys made by `renown keys generate` and kept in a secret "
        "store (a Kubernetes Secret, a compose secret). Idempotent: keys already "
        "registered are left as they are. Every line is checked before any is stored.",
    )
    q.add_argument("--file", required=True, help="lines of 'owner role key'; # comments")

    q = actions.add_parser("list", help="every key, without secrets (they are not stored)")
    q.add_argument("--active", action="store_true", help="leave out revoked keys")
    q.add_argument("--json", action="store_true")

    q = actions.add_parser("revoke", help="revoke a key: refused from the next request on")
    q.add_argument("id", type=_key_id, help="the key's id (renown keys list)")
    q.add_argument("--json", action="store_true")
    return p
