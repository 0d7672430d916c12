"""Command line: ``python -m jobs nightly|backfill|generate …`` (SPEC §11).

Thin: parse the arguments, load the config, build the Spark session, call jobs.run.
"""

from __future__ import annotations

import argparse
import sys

from jobs.argtypes import date_arg, mall_ids_arg


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--conf", default="conf", help="config folder (default: conf)")
    p.add_argument("--landing", help="landing folder or URI (overrides conf/storage.yaml)")
    p.add_argument("--lakehouse", help="lakehouse root folder or URI (overrides conf/storage.yaml)")
    p.add_argument("--master", help="Spark master URL (overrides conf/storage.yaml), e.g. spark://127.0.0.1:7077")
    p.add_argument("--summary-json", metavar="FILE", help="also write the run's summary as JSON to FILE")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m jobs", description="Footfall analytics jobs.")
    sub = p.add_subparsers(dest="command", required=True)
    n = sub.add_parser("nightly", help="ingest new files, recompute what they touch up to --date")
    n.add_argument("--date", type=date_arg, required=True, help="the run's local date YYYY-MM-DD")
    _common(n)
    b = sub.add_parser("backfill", help="ingest new files, recompute a date range")
    b.add_argument("--from", dest="start", type=date_arg, required=True)
    b.add_argument("--to", dest="end", type=date_arg, required=True)
    b.add_argument("--malls", type=mall_ids_arg, help="comma-separated mall ids (default: all)")
    _common(b)
    s = sub.add_parser("show", help="print what the lakehouse holds")
    _common(s)
    sub.add_parser("generate", help="write a synthetic world (see --help)", add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "generate":
        from jobs.generate import main as generate_main
        return generate_main(argv[1:])
    args = parser().parse_args(argv)

    from jobs.config import ConfigError, load_config
    from jobs.run import RunError, backfill, nightly
    from jobs.spark import build_spark

    try:
        cfg = load_config(args.conf).with_storage(args.landing, args.lakehouse, args.master)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    st = cfg.storage
    spark = build_spark(st.spark_master, st.spark_app_name, st.spark_conf)
    try:
        if args.command == "show":
            from jobs.show import render
            print(render(spark, cfg))
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
    except RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        spark.stop()


if __name__ == "__main__":
    sys.exit(main())
