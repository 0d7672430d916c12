"""Command line: ``footfall nightly|backfill|maintain|show|sql|generate …`` (SPEC §11), also
``python -m jobs …``; ``footfall reports …`` is the serving side's (:mod:`reports.__main__`).

Thin: parse the arguments, load the config, build the Spark session, call jobs.run.
Exit codes: 0 done; 2 bad input (config, arguments, landing, an S3 location out of reach),
nothing written; 3 the lakehouse is busy with another run, or another writer changed it
meanwhile: run again later; 1 any other failure (a rerun completes it, SPEC §9).
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from jobs.argtypes import date_arg, mall_ids_arg


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--conf", default="conf", help="config folder (default: conf)")
    p.add_argument("--landing", help="landing folder or URI (overrides conf/storage.yaml)")
    p.add_argument("--lakehouse", help="lakehouse root folder or URI (overrides conf/storage.yaml)")
    p.add_argument("--master", help="Spark master URL (overrides conf/storage.yaml), e.g. spark://127.0.0.1:7077")
    p.add_argument("--summary-json", metavar="FILE", help="also write the run's summary as JSON to FILE")
    p.add_argument("--quiet", action="store_true",
                   help="no progress lines on stderr (the summary is still printed)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="footfall", description="Footfall analytics: the Spark jobs, "
                                "and (footfall reports …) the report API, reports and exports.")
    sub = p.add_subparsers(dest="command", required=True)
    n = sub.add_parser("nightly", help="ingest new files, recompute what they touch up to --date")
    n.add_argument("--date", type=date_arg, required=True, help="the run's local date YYYY-MM-DD")
    _common(n)
    b = sub.add_parser("backfill", help="ingest new files, recompute a date range")
    b.add_argument("--from", dest="start", type=date_arg, required=True)
    b.add_argument("--to", dest="end", type=date_arg, required=True)
    b.add_argument("--malls", type=mall_ids_arg, help="comma-separated mall ids (default: all)")
    _common(b)
    m = sub.add_parser("maintain", help="compact the Delta tables and vacuum old files (weekly)")
    m.add_argument("--retain-hours", type=float, default=168,
                   help="VACUUM keeps files referenced within this many hours (default and minimum: 168)")
    _common(m)
    s = sub.add_parser("show", help="print what the lakehouse holds")
    _common(s)
    q = sub.add_parser("sql", help="serve the BI catalog over JDBC/ODBC (Spark Thrift Server; "
                       "docs/bi.md) until Ctrl-C")
    q.add_argument("--host", help="address to listen on (default: catalog.server.host, 127.0.0.1)")
    q.add_argument("--port", type=int, help="port (default: catalog.server.port, 10000)")
    _common(q)
    sub.add_parser("generate", help="write a synthetic world (see --help)", add_help=False)
    sub.add_parser("reports", help="serve the report API, make tokens, print reports, write "
                   "exports (see footfall reports --help)", add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "generate":
        from jobs.generate import main as generate_main
        return generate_main(argv[1:])
    if argv and argv[0] == "reports":
        from reports.__main__ import main as reports_main
        return reports_main(argv[1:])
    args = parser().parse_args(argv)

    from jobs.config import ConfigError, check_hmac_key, load_config
    from jobs.lock import ConcurrentRunError, LakehouseBusy, held_for_run
    from jobs.run import RunError

    try:
        cfg = load_config(args.conf).with_storage(args.landing, args.lakehouse, args.master)
        if args.command in ("nightly", "backfill"):  # FOOTFALL_HMAC_KEY: warn, or stop if required
            check_hmac_key(cfg)
        _check_locations(cfg, args)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    st = cfg.storage
    if args.command == "sql":
        return _sql(cfg, args)
    if not args.quiet:
        from jobs import progress
        progress.enable()
    try:
        # The writing commands hold the run lock from here: a busy lakehouse is reported
        # before Spark's start-up, not after it.
        with (held_for_run(st, _lock_command(cfg, args)) if args.command != "show"
              else contextlib.nullcontext()):
            return _with_spark(cfg, args)
    except (LakehouseBusy, ConcurrentRunError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except RunError as exc:  # e.g. an unknown --malls id, found before Spark starts
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _lock_command(cfg, args) -> str:
    """The command as the run names itself to a run it keeps waiting."""
    from jobs.run import backfill_command, maintain_command, nightly_command
    if args.command == "nightly":
        return nightly_command(args.date)
    if args.command == "backfill":
        return backfill_command(cfg, args.start, args.end, args.malls)
    return maintain_command(args.retain_hours)


def _with_spark(cfg, args) -> int:
    """Start Spark and run the command; its exit code."""
    from jobs import progress
    from jobs.landing import LandingError
    from jobs.maintenance import MaintenanceError
    from jobs.run import RunError, backfill, maintain, nightly
    from jobs.spark import build_spark

    st = cfg.storage
    progress.step("starting Spark (%s)", st.spark_master)
    conf = dict(st.spark_conf)
    if args.command in ("nightly", "backfill"):  # they register the BI catalog at their end
        from jobs.catalog import session_conf
        conf.update(session_conf(cfg))
    spark = build_spark(st.spark_master, st.spark_app_name, conf)
    try:
        if args.command == "show":
            from jobs.show import render
            print(render(spark, cfg))
            return 0
        if args.command == "maintain":
            print(maintain(spark, cfg, args.retain_hours))
            return 0
        if args.command == "nightly":
            summary = nightly(spark, cfg, args.date)
        else:
            summary = backfill(spark, cfg, args.start, args.end, args.malls)
        print(summary.render())
        if args.summary_json:
            with open(args.summary_json, "w") as fh:
                fh.write(summary.to_json())
        return 0
    except (RunError, LandingError, MaintenanceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        spark.stop()


def _check_locations(cfg, args) -> None:
    """Stop before Spark starts when the landing or the lakehouse is out of reach (a
    missing connector, bucket or endpoint), with one message naming the setting."""
    from jobs.config import ConfigError
    from jobs.objectstore import location_problem
    from jobs.paths import jars

    st = cfg.storage
    session = jars() + [j for j in st.spark_conf.get("spark.jars", "").split(",") if j.strip()]
    where = [("--lakehouse" if args.lakehouse else "lakehouse (storage.yaml)", st.lakehouse)]
    if args.command in ("nightly", "backfill"):
        where.append(("--landing" if args.landing else "landing (storage.yaml)", st.landing))
    for setting, location in where:
        problem = location_problem(setting, location, st.spark_conf, session)
        if problem:
            raise ConfigError(problem)


def _sql(cfg, args) -> int:
    from jobs.lock import LakehouseBusy
    from jobs.sqlserver import SqlServerError, serve
    try:
        return serve(cfg, args.host, args.port)
    except SqlServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except LakehouseBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
