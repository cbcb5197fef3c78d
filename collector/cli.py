"""``giamsat …``: serve, migrate, manage the site registry, print embed code.

Options mirror the ``GIAMSAT_*`` environment variables (``--database-url`` ↔
``GIAMSAT_DATABASE_URL``); an option given on the command line wins.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from collector.config import Config, ConfigError
from collector.registry import (
    SITE_KINDS,
    RegistryError,
    import_sites,
    list_sites,
    load_agencies,
    make_site,
    save_site,
)
from collector.store import Database, open_database

Command = Callable[[argparse.Namespace, Config], int]
COMMANDS: dict[str, Command] = {}


def command(name: str) -> Callable[[Command], Command]:
    def register(fn: Command) -> Command:
        COMMANDS[name] = fn
        return fn

    return register


async def _with_db(config: Config, fn: Callable[[Database], Awaitable[Any]]) -> Any:
    db = await open_database(config.database_url)
    try:
        await db.migrate()
        await load_agencies(db)
        return await fn(db)
    finally:
        await db.close()


def run_db(config: Config, fn: Callable[[Database], Awaitable[Any]]) -> Any:
    return asyncio.run(_with_db(config, fn))


@command("serve")
def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    import uvicorn

    if config.workers > 1 and not config.is_postgres:
        print(
            "giamsat: --workers > 1 needs PostgreSQL (GIAMSAT_DATABASE_URL=postgresql://…); "
            "SQLite has one writer. Start with --workers 1.",
            file=sys.stderr,
        )
        return 2
    # workers re-create the app from the environment: hand the effective config down
    for key, value in vars(config).items():
        os.environ[f"GIAMSAT_{key.upper()}"] = str(value)
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    # X-Forwarded-For/-Proto are believed only from GIAMSAT_TRUSTED_PROXIES (uvicorn's own
    # default would trust 127.0.0.1, letting a local process claim any visitor IP)
    proxies = config.trusted_proxies.strip()
    uvicorn.run(
        "collector.app:create_app", factory=True, host=config.host, port=config.port,
        workers=config.workers, loop=loop, http="httptools", access_log=config.access_log,
        log_level="info", timeout_graceful_shutdown=30,
        proxy_headers=bool(proxies), forwarded_allow_ips=proxies or None,
    )
    return 0


@command("migrate")
def cmd_migrate(args: argparse.Namespace, config: Config) -> int:
    async def migrate() -> list[str]:
        db = await open_database(config.database_url)
        try:
            applied = await db.migrate()
            await load_agencies(db)
            return applied
        finally:
            await db.close()

    applied = asyncio.run(migrate())
    print("schema up to date" if not applied else f"applied: {', '.join(applied)}")
    return 0


@command("site add")
def cmd_site_add(args: argparse.Namespace, config: Config) -> int:
    try:
        site = make_site(args.id, args.agency, args.kind, args.name, args.host,
                         args.registered_on or "", "0" if args.optional else "1")
        run_db(config, lambda db: save_site(db, site))
    except RegistryError as e:
        print(f"giamsat: {e}", file=sys.stderr)
        return 2
    print(f"site {site.id} saved: {site.name} ({', '.join(site.hosts)})")
    return 0


@command("site import")
def cmd_site_import(args: argparse.Namespace, config: Config) -> int:
    text = Path(args.file).read_text(encoding="utf-8-sig")
    report = run_db(config, lambda db: import_sites(db, text))
    for line, message in report.errors:
        print(f"{args.file}:{line}: {message}", file=sys.stderr)
    print(f"{report.saved} site(s) saved, {len(report.errors)} row(s) refused")
    return 1 if report.errors else 0


@command("site list")
def cmd_site_list(args: argparse.Namespace, config: Config) -> int:
    sites = run_db(config, list_sites)
    for s in sites:
        req = "required" if s.required else "optional"
        print(f"{s.id}\t{s.agency_code}\t{s.kind}\t{req}\t{s.name}\t{' '.join(s.hosts)}")
    return 0


@command("snippet")
def cmd_snippet(args: argparse.Namespace, config: Config) -> int:
    from collector.embed import snippet_html

    base = config.public_url or f"http://{config.host}:{config.port}"
    integrity = ""
    if args.sri:
        from collector.assets import LoaderMissing, load_loader

        try:
            integrity = load_loader().sri
        except LoaderMissing as e:
            print(f"giamsat: {e}", file=sys.stderr)
            return 2
    print(snippet_html(args.site_id, base, integrity), end="")
    return 0


@command("site token")
def cmd_site_token(args: argparse.Namespace, config: Config) -> int:
    from collector.dossiers import issue_token

    try:
        token = run_db(config, lambda db: issue_token(db, args.site_id))
    except LookupError as e:
        print(f"giamsat: {e}", file=sys.stderr)
        return 2
    print(f"# dossier feed token of site {args.site_id} (replaces any previous token; "
          "shown once)", file=sys.stderr)
    print(token)
    return 0


@command("rollup")
def cmd_rollup(args: argparse.Namespace, config: Config) -> int:
    import datetime as dt

    from rich.progress import Progress

    from collector.rollup import rebuild, rollup
    from collector.rollup_month import invalidate_site_months, refresh_site_months

    if args.since:
        try:
            dt.date.fromisoformat(args.since)
        except ValueError:
            print("giamsat: --since: expected YYYY-MM-DD", file=sys.stderr)
            return 2
    with Progress(transient=True) as bar:
        tasks: dict[str, Any] = {}

        def progress(table: str, done: int, total: int) -> None:
            if table not in tasks:
                tasks[table] = bar.add_task(f"rolling up {table}", total=total)
            bar.update(tasks[table], completed=done, total=total)

        async def run(db: Database) -> Any:
            if args.since:
                await invalidate_site_months(db)  # long ranges read daily rows meanwhile
                report = await rebuild(db, args.since, args.batch, progress)
                await refresh_site_months(db, since=args.since)
                return report
            report = await rollup(db, args.batch, progress)
            await refresh_site_months(db)
            return report

        report = run_db(config, run)
    print(f"rollup: {report}")
    if args.retention:
        return cmd_retention(args, config)
    return 0


@command("retention")
def cmd_retention(args: argparse.Namespace, config: Config) -> int:
    from collector.retention import retention

    report = run_db(config, lambda db: retention(db, config.retention_days))
    print(f"retention: {report}")
    return 0


def add_report_commands(sub: Any) -> None:
    """``giamsat user add|disable|enable`` and ``giamsat token add`` (accounts of the report
    pages)."""
    user = sub.add_parser("user", help="report accounts").add_subparsers(
        dest="user_command", required=True)
    uadd = user.add_parser("add", help="create or update an account")
    uadd.add_argument("username")
    uadd.add_argument("--role", required=True, choices=("admin", "agency"))
    uadd.add_argument("--agency", default="", help="agency code for --role agency")
    uadd.add_argument("--password-stdin", action="store_true",
                      help="read the password from stdin (else asked twice on the terminal)")
    udis = user.add_parser("disable", help="disable an account (its sessions and API "
                                           "tokens stop working)")
    udis.add_argument("username")
    uen = user.add_parser("enable", help="enable a disabled account")
    uen.add_argument("username")
    token = sub.add_parser("token", help="stats API tokens").add_subparsers(
        dest="token_command", required=True)
    tadd = token.add_parser("add", help="create an API token for a user (shown once)")
    tadd.add_argument("username")
    tadd.add_argument("--label", default="")


@command("user add")
def cmd_user_add(args: argparse.Namespace, config: Config) -> int:
    import getpass

    from reports.auth import AuthError, add_user

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("giamsat: passwords differ", file=sys.stderr)
            return 2
    try:
        user = run_db(config, lambda db: add_user(db, args.username, password, args.role,
                                                  args.agency))
    except AuthError as e:
        print(f"giamsat: {e}", file=sys.stderr)
        return 2
    print(f"user {user.username} saved ({user.role} {user.agency_code})".rstrip())
    return 0


def _set_disabled(args: argparse.Namespace, config: Config, disabled: bool) -> int:
    from reports.auth import set_disabled

    if not run_db(config, lambda db: set_disabled(db, args.username, disabled)):
        print(f"giamsat: no user {args.username!r}", file=sys.stderr)
        return 2
    print(f"user {args.username} {'disabled' if disabled else 'enabled'}")
    return 0


@command("user disable")
def cmd_user_disable(args: argparse.Namespace, config: Config) -> int:
    return _set_disabled(args, config, True)


@command("user enable")
def cmd_user_enable(args: argparse.Namespace, config: Config) -> int:
    return _set_disabled(args, config, False)


@command("token add")
def cmd_token_add(args: argparse.Namespace, config: Config) -> int:
    from reports.auth import AuthError, add_token

    try:
        token = run_db(config, lambda db: add_token(db, args.username, args.label))
    except AuthError as e:
        print(f"giamsat: {e}", file=sys.stderr)
        return 2
    print(token)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="giamsat", description=__doc__.splitlines()[0])
    p.add_argument("--database-url", help="SQLite path or postgresql://… (GIAMSAT_DATABASE_URL)")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the collector")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.add_argument("--geoip-path")
    serve.add_argument("--public-url")
    serve.add_argument("--demo", action="store_true", default=None,
                       help="register demo sites into an empty registry")
    serve.add_argument("--access-log", action="store_true", default=None)
    sub.add_parser("migrate", help="apply pending migrations")

    site = sub.add_parser("site", help="the site registry").add_subparsers(
        dest="site_command", required=True)
    add = site.add_parser("add", help="register or update a site")
    add.add_argument("id")
    add.add_argument("--agency", required=True, help="agency code, e.g. H26 or BYT")
    add.add_argument("--kind", required=True, choices=SITE_KINDS)
    add.add_argument("--name", required=True)
    add.add_argument("--host", action="append", required=True, help="hostname (repeatable)")
    add.add_argument("--registered-on")
    add.add_argument("--optional", action="store_true", help="the code is not required")
    imp = site.add_parser("import", help="import sites from CSV (idempotent)")
    imp.add_argument("file")
    site.add_parser("list", help="list registered sites")
    tok = site.add_parser("token", help="create or rotate a site's dossier feed token")
    tok.add_argument("site_id", type=int)

    roll = sub.add_parser("rollup", help="roll new events up into the daily tables")
    roll.add_argument("--since", help="recount every day from YYYY-MM-DD on (backfill)")
    roll.add_argument("--batch", type=int, default=None,
                      help="rows per batch (default: 150,000 on SQLite, where a batch holds "
                           "the write lock while it is applied; 500,000 on PostgreSQL)")
    roll.add_argument("--retention", action="store_true",
                      help="then delete raw rows older than --retention-days")
    roll.add_argument("--retention-days", type=int)
    ret = sub.add_parser("retention", help="delete rolled-up raw rows older than the age")
    ret.add_argument("--retention-days", type=int)

    snip = sub.add_parser("snippet", help="print the embed HTML for a site")
    snip.add_argument("site_id", type=int)
    snip.add_argument("--public-url")
    snip.add_argument("--sri", action="store_true",
                      help="add a Subresource Integrity hash (re-paste after each upgrade)")
    from collector.cli_compliance import add_parsers as compliance_parsers

    compliance_parsers(sub)
    add_report_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    name = args.command
    if name == "site":
        name = f"site {args.site_command}"
    if getattr(args, f"{name}_command", None):
        name = f"{name} {getattr(args, f'{name}_command')}"
    overrides = {
        k: v for k, v in vars(args).items()
        if k not in ("command", "site_command", "user_command", "token_command")
        and v is not None
    }
    try:
        config = Config.from_env(**{k: v for k, v in overrides.items()
                                    if k in Config.__dataclass_fields__})
    except ConfigError as e:
        print(f"giamsat: {e}", file=sys.stderr)
        return 2
    return COMMANDS[name](args, config)


def _compliance_commands() -> None:
    from collector.cli_compliance import COMMANDS as more

    COMMANDS.update(more)


_compliance_commands()

if __name__ == "__main__":
    sys.exit(main())
