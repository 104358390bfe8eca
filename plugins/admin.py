"""Roles and administration: the admin API and the ``wellmate.py user ...`` commands.

A user's ``role`` is "user" or "admin". Admins are made on the command line only
(``user create --admin``, ``user promote``): the API can disable an account but never hand out
admin rights, so a stolen admin token cannot make more admins.

    GET  /api/v1/admin/users                 every account, paged (no health data)
    GET  /api/v1/admin/users/{id}            one account
    POST /api/v1/admin/users/{id}/disable    the account's tokens stop working at once
    POST /api/v1/admin/users/{id}/enable
    GET  /api/v1/admin/stats?days=&tz=       users, messages per day, provider failures

A user token gets 403 on every admin route.

The data folder has one writer: the files storage keeps the users in memory and cuts off what
another process appended to its file at its next write, so a `user` command that wrote beside a
running server would be lost. A running server holds a lock on ``data/server.lock`` (`wellmate.serve`);
the commands that write refuse to run while it is held.
"""

import logging
import sys
from datetime import datetime, time as day_start, timedelta

import bottle

import wellmate
from wellmate import (SERVER_LOCK, ApiError, Conflict, FileLock, all_pages, hookimpl, new_id, now_iso, paged,
                      query_integer, zone_or_none)
from wellmate_plugins._openapi import Api, array, boolean, integer, obj, page, paging, string
from wellmate_plugins.accounts import accounts_for
from wellmate_plugins.auth import PASSWORD_MIN, hash_password, require_admin, required, valid_username

log = logging.getLogger("wellmate.admin")

ROLES = ["user", "admin"]


def admin_view(user: dict) -> dict:
    """What an admin sees of an account: who and how they log in, never their health data."""
    return {
        "uuid": user["id"],
        "username": user.get("username"),
        "full_name": user.get("full_name") or "",
        "role": user.get("role", "user"),
        "disabled": bool(user.get("disabled")),
        "has_password": bool(user.get("password_hash")),
        "wechat": bool(user.get("wx_openid")),
        "created_at": user["created_at"],
    }


def service_stats(wm, days: int, tz: str) -> dict:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)
    today = datetime.now(zone).date()
    dates = [(today - timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]
    since = now_iso(datetime.combine(today - timedelta(days=days - 1), day_start.min, zone))
    chat = wm.service("chat")
    counts = chat.sessions.messages_by_day(since, zone) if chat else {}
    per_day = []
    for date in dates:
        roles = counts.get(date, {})
        per_day.append({"date": date, "user": roles.get("user", 0), "assistant": roles.get("assistant", 0),
                        "total": sum(roles.values())})
    failures = {name: 0 for name in wm.config["providers"]}
    failures.update(chat.failure_counts() if chat else {})
    return {
        "days": days,
        "timezone": tz,
        "users": wm.service("accounts").counts(since),
        "messages_per_day": per_day,
        "provider_failures": failures,  # since the server started
        "storage": {"backend": wm.storage.name, **wm.storage.stats(), **stored_counts(wm, chat)},
        "uptime_s": round(wm.uptime(), 3),
        "version": wellmate.__version__,
    }


def stored_counts(wm, chat) -> dict:
    """How many of each kind of thing is stored, each counted by the plugin that keeps it (from
    counters, not a walk of the data); a kind whose plugin is disabled is left out."""
    keepers = {"users": wm.service("accounts"), "sessions": chat.sessions if chat else None,
               "records": wm.service("records"), "reminders": wm.service("reminders")}
    counts = {kind: keeper.count() for kind, keeper in keepers.items() if keeper is not None}
    counts["messages"] = chat.sessions.message_total() if chat else 0
    return counts


ADMIN_USER = obj({"uuid": string(), "username": string(nullable=True), "full_name": string(), "role": string(),
                   "disabled": boolean(), "has_password": boolean(), "wechat": boolean(), "created_at": string()},
                  required=["uuid", "username", "full_name", "role", "disabled", "has_password", "wechat", "created_at"],
                  title="AdminUser")


@hookimpl
def routes(app, wm):
    tokens = required(wm, "admin").tokens
    accounts = accounts_for(wm, "admin")

    def target(user_id: str) -> dict:
        user = accounts.get(user_id)
        if user is None:
            raise ApiError(404, "user_not_found", f"No user {user_id!r}.")
        return user

    @app.get("/api/v1/admin/users", api=Api(
        "Every account (never health data)", auth="admin",
        query=paging(50, 200),
        responses={200: page(ADMIN_USER)}))
    def list_users():
        require_admin(wm)
        return paged(accounts.list, admin_view, 50, 200)

    @app.get("/api/v1/admin/users/<user_id>", api=Api("One account", auth="admin", responses={200: ADMIN_USER}))
    def read_user(user_id):
        require_admin(wm)
        return admin_view(target(user_id))

    @app.post("/api/v1/admin/users/<user_id>/disable", api=Api(
        "Disable an account and end its logins", auth="admin", responses={200: ADMIN_USER},
        errors={400: "cannot_disable_self"}))
    def disable(user_id):
        admin = require_admin(wm)
        user = target(user_id)
        if user["id"] == admin["id"]:
            raise ApiError(400, "cannot_disable_self", "You cannot disable your own account; ask another admin "
                                                       "or use `wellmate.py user disable`.")
        log.info("admin %s disabled user %s", admin["id"], user["id"])
        return admin_view(tokens.revoke_all(user["id"], disabled=True))

    @app.post("/api/v1/admin/users/<user_id>/enable", api=Api(
        "Enable an account (its user logs in again)", auth="admin", responses={200: ADMIN_USER}))
    def enable(user_id):
        admin = require_admin(wm)
        target(user_id)
        log.info("admin %s enabled user %s", admin["id"], user_id)
        # Tokens from before the disable stay revoked: the user logs in again.
        return admin_view(accounts.update(user_id, {"disabled": False}))

    @app.get("/api/v1/admin/stats", api=Api(
        "Users, messages per day, provider failures and storage", auth="admin",
        query={"days": integer(1, 366, default=7), "tz": string(description="IANA time zone of the days; default the admin's")},
        responses={200: obj({"days": integer(1), "timezone": string(), "users": obj(),
                             "messages_per_day": array(obj({"date": string(format="date"), "user": integer(0),
                                                            "assistant": integer(0), "total": integer(0)})),
                             "provider_failures": obj(), "storage": obj(), "uptime_s": {"type": "number"},
                             "version": string()},
                            required=["days", "timezone", "users", "messages_per_day", "provider_failures", "storage",
                                      "uptime_s", "version"])}))
    def stats():
        admin = require_admin(wm)
        query = bottle.request.query
        days = query_integer("days", 7, 1, 366)
        tz = query.get("tz") or wm.user_zone(admin)[0]
        if zone_or_none(tz) is None:
            raise ApiError(400, "invalid_field", f"tz: unknown time zone {tz!r}; use an IANA name such as Asia/Shanghai")
        return service_stats(wm, days, tz)


# ---------------------------------------------------------------------------------------------
# wellmate.py user ...
# ---------------------------------------------------------------------------------------------


class CommandError(Exception):
    """A user command cannot do what was asked; the message says why."""

    status = 1


class UsageError(CommandError):
    """The command was asked for in a way it cannot work (exit 2, as argparse's usage errors)."""

    status = 2


def read_password(args) -> str:
    """From one line of stdin (--password-stdin), or typed twice at a hidden prompt. Never from
    the command line, where other users of the machine and the shell history would see it."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        import getpass

        # Without a terminal, getpass reads stdin with a warning and ends in an EOFError traceback.
        if not sys.stdin or not sys.stdin.isatty():
            raise UsageError("no terminal to type the password on; give it on the first line of stdin with "
                             "--password-stdin; nothing changed")
        try:
            password = getpass.getpass("Password: ")
            if getpass.getpass("Password again: ") != password:
                raise CommandError("the two passwords differ; nothing changed")
        except EOFError:
            raise CommandError("no password typed; nothing changed")
    if len(password) < PASSWORD_MIN:
        raise CommandError(f"the password needs at least {PASSWORD_MIN} characters; nothing changed")
    return password


def find(wm, name: str) -> dict:
    accounts = accounts_for(wm, "admin")
    user = accounts.find_by_username(name) or accounts.get(name)
    if user is None:
        raise CommandError(f"no user with the username or uuid {name!r}; `wellmate.py user list` shows them")
    return user


def describe(user: dict) -> str:
    return user.get("username") or user["id"]


def cmd_create(wm, args):
    args.username, problem = valid_username(args.username)
    if problem:
        raise CommandError(f"username: {problem}")
    password = read_password(args)
    user = {"id": new_id(), "username": args.username, "password_hash": hash_password(password),
            "full_name": args.full_name or "", "gender": None, "age": None, "birth_date": None,
            "role": "admin" if args.admin else "user", "settings": {}, "disabled": False, "created_at": now_iso()}
    try:
        accounts_for(wm, "admin").create(user)
    except Conflict:
        raise CommandError(f"the username {args.username!r} is taken")
    print(f"created {user['role']} {args.username} ({user['id']})")


def cmd_list(wm, args):
    rows = [("uuid", "username", "role", "status", "login", "created_at")]
    for user in sorted(all_pages(accounts_for(wm, "admin").list, 200), key=lambda u: u.get("created_at") or ""):
        login = "+".join(kind for kind, has in (("password", user.get("password_hash")),
                                                ("wechat", user.get("wx_openid"))) if has) or "-"
        rows.append((user["id"], user.get("username") or "-", user.get("role", "user"),
                     "disabled" if user.get("disabled") else "active", login, user.get("created_at") or ""))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
    print(f"{len(rows) - 1} user(s)")


def cmd_set_password(wm, args):
    user = find(wm, args.user)
    changes = {}
    if not user.get("username"):
        if not args.username:
            raise CommandError("this account has no username to log in with; give one with --username NAME")
        args.username, problem = valid_username(args.username)
        if problem:
            raise CommandError(f"--username: {problem}")
        changes["username"] = args.username
    changes["password_hash"] = hash_password(read_password(args))
    try:
        required(wm, "admin").tokens.revoke_all(user["id"], **changes)
    except Conflict:
        raise CommandError(f"the username {args.username!r} is taken")
    print(f"password set for {changes.get('username') or describe(user)}; their other logins have ended")


def set_fields(message, **changes):
    def command(wm, args):
        user = find(wm, args.user)
        if changes.get("disabled"):
            required(wm, "admin").tokens.revoke_all(user["id"], **changes)  # their tokens stop working at once
        else:
            accounts_for(wm, "admin").update(user["id"], changes)
        print(message.format(describe(user)))
    return command


COMMANDS = {
    # name: (function, help, writes, takes a user)
    "create": (cmd_create, "create an account with a password (--admin: an admin)", True, False),
    "list": (cmd_list, "list every account", False, False),
    "set-password": (cmd_set_password, "set an account's password; its other logins end", True, True),
    "disable": (set_fields("{} is disabled; their tokens no longer work", disabled=True),
                "disable an account", True, True),
    "enable": (set_fields("{} is enabled; they log in again", disabled=False), "enable a disabled account", True, True),
    "promote": (set_fields("{} is an admin", role="admin"), "make an account an admin", True, True),
    "demote": (set_fields("{} is a user, not an admin", role="user"), "take an account's admin role away", True, True),
}


def run(command: str, wm_factory, args) -> int:
    function, _, writes, _ = COMMANDS[command]
    wm = wm_factory()
    lock = FileLock(wm.data_dir / SERVER_LOCK)
    try:
        if writes and not lock.acquire():
            # The admin API can disable and enable accounts while the server runs; creating
            # accounts, passwords and roles need the server stopped.
            live = (f" (or, while it runs, an admin can POST /api/v1/admin/users/{{id}}/{command})"
                    if command in ("disable", "enable") else "")
            raise CommandError(f"a Wellmate server (pid {lock.holder()}) is running on {wm.data_dir}; its next "
                               f"write would undo this change. Stop it, run the command, start it again{live}.")
        function(wm, args)
        return 0
    except CommandError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.status
    finally:
        lock.release()
        wm.close()


@hookimpl
def cli(subparsers, wm_factory):
    parser = subparsers.add_parser("user", help="manage accounts: " + ", ".join(COMMANDS),
                                   description="Manage accounts. Commands that change something refuse to run "
                                               "while a server uses the same data folder.")
    commands = parser.add_subparsers(dest="user_command", metavar="COMMAND", required=True)
    for name, (_, help, writes, takes_user) in COMMANDS.items():
        sub = commands.add_parser(name, help=help, description=help)
        if name == "create":
            sub.add_argument("username")
            sub.add_argument("--admin", action="store_true", help="make the account an admin")
            sub.add_argument("--full-name", help="the name shown in the app")
        elif takes_user:
            sub.add_argument("user", help="username or uuid (`user list` shows both)")
        if name == "set-password":
            sub.add_argument("--username", help="for an account without one (WeChat-only): the username to log in with")
        if name in ("create", "set-password"):
            sub.add_argument("--password-stdin", action="store_true",
                             help="read the password from the first line of stdin instead of prompting")
        sub.set_defaults(func=lambda args, name=name: run(name, wm_factory, args))
