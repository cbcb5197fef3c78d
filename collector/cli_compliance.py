"""CLI commands of the compliance part: ``giamsat scan``, ``giamsat reconcile import``,
``giamsat compliance``. Registered into ``collector.cli`` by ``add_parsers``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from collector.config import Config
from collector.store import Database
from collector.tracking import local_day


def add_parsers(sub: argparse._SubParsersAction) -> None:
    scan = sub.add_parser("scan", help="check registered sites' pages for the monitoring code")
    scan.add_argument("site_ids", nargs="*", type=int, metavar="SITE_ID",
                      help="sites to scan (default: every registered site)")
    scan.add_argument("--url", help="scan this base URL instead (one SITE_ID only)")
    scan.add_argument("--save-url", action="store_true",
                      help="remember --url as the site's scan address")
    scan.add_argument("--sample", type=int, help="pages per site besides the home page")
    scan.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    scan.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    scan.add_argument("--retries", type=int, default=1)
    scan.add_argument("--public-url", help="the collector's public URL (tracker host check)")
    scan.add_argument("--public-hosts",
                      help="other hosts of this collector, comma separated (tracker host check)")

    rec = sub.add_parser("reconcile", help="agency-reported totals for reconciliation")
    rsub = rec.add_subparsers(dest="reconcile_command", required=True)
    imp = rsub.add_parser("import", help="import reported totals: site,service,period,count")
    imp.add_argument("file")

    comp = sub.add_parser("compliance", help="print compliance states for a month")
    comp.add_argument("--month", help="YYYY-MM (default: this month)")
    comp.add_argument("--all", action="store_true", help="also list compliant sites")


def _run(config: Config, fn):  # type: ignore[no-untyped-def]
    from collector.cli import run_db

    return run_db(config, fn)


def cmd_scan(args: argparse.Namespace, config: Config) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from collector.scan import ScanOptions, run_scans, save_target, scan_targets

    if args.url and len(args.site_ids) != 1:
        print("giamsat: --url needs exactly one SITE_ID", file=sys.stderr)
        return 2
    opts = ScanOptions(sample=args.sample if args.sample is not None else config.scan_sample,
                       concurrency=args.concurrency, timeout=args.timeout, retries=args.retries)

    async def go(db: Database) -> list:
        if args.url and args.save_url:
            await save_target(db, args.site_ids[0], args.url)
        targets = [(s.id, base) for s, base in await scan_targets(db, args.site_ids or None)]
        if args.url:
            targets = [(args.site_ids[0], args.url)]
        if not targets:
            return []
        with Progress(TextColumn("scan"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[last]}"), transient=True,
                      console=Console(stderr=True)) as bar:
            task = bar.add_task("scan", total=len(targets), last="")
            return await run_scans(
                db, config, targets, opts,
                on_done=lambda s: bar.update(task, advance=1, last=f"site {s.site_id}"))

    results = _run(config, go)
    if not results:
        print("giamsat: no site to scan", file=sys.stderr)
        return 1
    for s in sorted(results, key=lambda r: r.site_id):
        home = s.home
        snip = home.findings.snippet if home.findings else "-"
        print(f"{s.site_id}\t{home.status}\tsnippet={snip}\tpages={len(s.pages)}\t"
              f"{','.join(s.findings) or 'no findings'}")
    return 0


def cmd_reconcile_import(args: argparse.Namespace, config: Config) -> int:
    from collector.reconcile import import_reported

    try:
        text = Path(args.file).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        print(f"giamsat: {args.file}: cannot read as UTF-8 text ({e})", file=sys.stderr)
        return 2
    report = _run(config, lambda db: import_reported(db, text, f"csv:{Path(args.file).name}"))
    for line, message in report.errors:
        print(f"{args.file}:{line}: {message}", file=sys.stderr)
    print(f"{report.saved} row(s) saved, {len(report.errors)} row(s) refused")
    return 1 if report.errors else 0


def cmd_compliance(args: argparse.Namespace, config: Config) -> int:
    from collector.compliance import compute, month_period, parse_month

    now_ms = int(time.time() * 1000)
    month = args.month or local_day(now_ms)[:7]  # the local (UTC+7) month
    try:
        start, end = month_period(parse_month(month))
    except ValueError:
        print(f"giamsat: --month: expected YYYY-MM, got {month!r}", file=sys.stderr)
        return 2
    result = _run(config, lambda db: compute(db, config, start, end, now_ms))
    for s in result.sites:
        if s.state != "compliant" or args.all:
            print(f"{s.site_id}\t{s.agency_code}\t{s.state}\t{s.name}\t"
                  f"{'; '.join(f.message_vi for f in s.findings if f.severity != 'info')}")
    counts = result.counts()
    print(" ".join(f"{k}={v}" for k, v in counts.items()), file=sys.stderr)
    return 0


COMMANDS = {"scan": cmd_scan, "reconcile import": cmd_reconcile_import,
            "compliance": cmd_compliance}

