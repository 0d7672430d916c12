"""Command line: ``footfall reports serve | token create | group-datetime | export`` (also
``python -m reports …``).

Thin: parse the arguments, load the config, call reports.api / tokens / query / exports.
Exit codes: 0 done, 1 a run-time failure (gold unreadable, an export failed), 2 a bad
argument or config (the message names it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from jobs.argtypes import date_arg, mall_ids_arg

#: The API's parameter → this command line's option.
FLAGS = {"from": "--from", "to": "--to", "objects": "--objects", "interval": "--interval",
         "comeback": "--comeback", "bounce_threshold": "--bounce-threshold",
         "engagement_threshold": "--engagement-threshold"}


def _storage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--conf", default="conf", help="config folder (default: conf)")
    p.add_argument("--lakehouse", help="lakehouse root folder or URI (overrides conf/storage.yaml)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="footfall reports", description="Footfall reports: API, CLI, exports.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="serve the report API with uvicorn")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1; "
                   "0.0.0.0 for every interface)")
    s.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    s.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default: 1)")
    s.add_argument("--refresh-seconds", type=_seconds, default=2.0, metavar="S",
                   help="look for a new gold version at most every S seconds (default: 2; 0: on "
                        "every request)")
    s.add_argument("--no-warm-up", action="store_true",
                   help="take requests at once, without first answering one report per mall and "
                        "interval (the first requests then take longer)")
    _storage(s)

    t = sub.add_parser("token", help="manage API tokens")
    tsub = t.add_subparsers(dest="token_command", required=True)
    tc = tsub.add_parser("create", help="make a token for some malls; prints it once, stores its hash")
    tc.add_argument("--malls", type=mall_ids_arg, required=True, help="comma-separated mall ids, e.g. 215,1290")
    tc.add_argument("--name", required=True, help="who holds it, e.g. acme (unique)")
    tc.add_argument("--note", help="a note stored with the hash")
    tc.add_argument("--conf", default="conf", help="config folder (default: conf)")

    g = sub.add_parser("group-datetime", help="print a report, as the API answers it")
    for name, flag in FLAGS.items():
        g.add_argument(flag, dest=name, metavar=name.upper() if name in ("from", "to") else None,
                       help={"from": "first local date YYYY-MM-DD (required)",
                             "to": "last local date YYYY-MM-DD (required)",
                             "objects": "comma-separated object ids of one type (required)",
                             "interval": "hourly|daily|weekly|monthly|weekday|weekend (required)",
                             "comeback": "e.g. '2 week' (default), '1 month' … '10 year'",
                             "bounce_threshold": "e.g. '5 minute' (default)",
                             "engagement_threshold": "e.g. '20 minute' (default)"}[name])
    g.add_argument("--format", choices=("json", "csv"), default="json",
                   help="json: the API's body (default); csv: one line per row")
    _storage(g)

    e = sub.add_parser("export", help="write the exports of conf/exports.yaml due on --date")
    e.add_argument("--date", type=date_arg, help="run date: the last local date the nightly run "
                   "completed (default: yesterday)")
    e.add_argument("--name", action="append", help="only this export (repeatable)")
    _storage(e)
    return p


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def _config(args):
    from jobs.config import load_config
    return load_config(args.conf).with_storage(lakehouse=getattr(args, "lakehouse", None))


def _serve(args) -> int:
    import uvicorn

    from reports.api import ENV_CONF, ENV_LAKEHOUSE, ENV_REFRESH, ENV_WARM_UP
    from reports.tokens import TOKENS_FILE, load_tokens

    cfg = _config(args)  # check config and tokens now, with a clear message
    load_tokens(Path(cfg.conf_dir) / TOKENS_FILE, cfg)
    # The worker processes build the app from the environment (uvicorn's factory).
    os.environ[ENV_CONF] = str(Path(args.conf).resolve())
    if args.lakehouse:
        os.environ[ENV_LAKEHOUSE] = args.lakehouse
    os.environ[ENV_REFRESH] = str(args.refresh_seconds)
    os.environ[ENV_WARM_UP] = "0" if args.no_warm_up else "1"
    uvicorn.run("reports.api:app_from_env", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level="info")
    return 0


def _group_datetime(args) -> int:
    from reports.params import ReportError, parse, resolve_objects
    from reports.query import Gold, report

    cfg = _config(args)
    query = {name: [getattr(args, name)] for name in FLAGS if getattr(args, name) is not None}
    try:
        req = parse(query)
        objs = resolve_objects(cfg, req)
        rep = report(Gold(cfg.storage.lakehouse, refresh_seconds=0,
                   storage_options=cfg.storage.delta_rs_options), cfg, objs, req)
    except ReportError as exc:
        print(f"error ({exc.code}): {exc.message(FLAGS.get(exc.parameter))}", file=sys.stderr)
        return 2 if exc.status < 500 else 1
    if args.format == "csv":
        sys.stdout.write(rep.csv_text())
    else:
        sys.stdout.write(rep.json_bytes().decode() + "\n")
    return 0


def _export(args) -> int:
    from reports import exports
    from reports.query import Gold

    cfg = _config(args)
    date = args.date or dt.date.today() - dt.timedelta(days=1)
    outcomes = exports.run(cfg, date, Gold(cfg.storage.lakehouse, refresh_seconds=0,
                   storage_options=cfg.storage.delta_rs_options), args.name)
    failed = [o for o in outcomes if o.error]
    written = sum(len(o.files) for o in outcomes)
    print(f"exports for {date}: {written} files written, {len(failed)} failed, "
          f"{sum(1 for o in outcomes if o.skipped)} not due")
    return 1 if failed else 0


def _token(args) -> int:
    from reports.tokens import TOKENS_FILE, create

    cfg = _config(args)
    token = create(Path(cfg.conf_dir), args.name, args.malls, cfg, args.note)
    print(token)
    print(f"stored the SHA-256 of this token as {args.name!r} (malls {','.join(map(str, args.malls))}) "
          f"in {cfg.conf_dir}/{TOKENS_FILE}; it is not shown again", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from jobs.config import ConfigError

    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "token":
            return _token(args)
        if args.command == "group-datetime":
            return _group_datetime(args)
        return _export(args)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
