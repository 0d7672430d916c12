"""`footfall generate …` (also `python -m jobs generate …`) — the generator's command line."""
from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path


def _date(s: str) -> date:
    try:
        return date.fromisoformat(s)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {s!r}") from e


def _positive(s: str) -> int:
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return v


def default_landing(conf: Path) -> Path:
    """The pipeline's landing folder: ``landing`` of conf/storage.yaml (default
    ``data/landing``), a relative path taken from the folder holding conf/."""
    from jobs.storagefile import StorageFile
    from jobs.configfile import load_model

    storage = conf / "storage.yaml"
    landing = load_model(storage, StorageFile).landing
    if "://" in landing and not landing.startswith("file://"):
        raise ValueError(f"{storage}: landing {landing!r} is not a local folder; pass --landing")
    path = Path(landing.removeprefix("file://"))
    return path if path.is_absolute() else conf.resolve().parent / path


def build_parser(prog: str = "footfall generate") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Write synthetic landing files (SPEC §2) for the malls of CONF/objects.yaml. "
                    "Same arguments => byte-identical files.")
    p.add_argument("--conf", default="conf", help="config folder with objects.yaml (default: conf)")
    p.add_argument("--landing",
                   help="landing folder; files go to <landing>/<arrival date>/ (default: the "
                        "'landing' of CONF/storage.yaml, else data/landing, relative to the "
                        "folder that holds CONF, as the pipeline resolves it)")
    p.add_argument("--start", type=_date, default=date(2016, 1, 4),
                   help="first local date (default: 2016-01-04)")
    p.add_argument("--days", type=_positive, default=57, help="number of days (default: 57)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--devices", type=_positive,
                      help="mean devices per mall per weekday (default: 600, ~1.2M records "
                           "for the demo world and range)")
    size.add_argument("--target-probes", type=_positive, metavar="N",
                      help="pick --devices so that about N records are written")
    p.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")
    p.add_argument("--new-world", action="store_true",
                   help="first write a fresh objects.yaml (the demo malls, from --seed) into "
                        "--conf, and pipeline.yaml with SPEC's defaults if there is none")
    p.add_argument("--clean", action="store_true", help="empty the landing folder first")
    p.add_argument("--bad-share", type=float, default=0.01,
                   help="share of bad records (default: 0.01)")
    p.add_argument("--gz-share", type=float, default=0.4,
                   help="share of gzipped files (default: 0.4)")
    p.add_argument("--feeds", action="store_true",
                   help="also write the feeds of CONF/feeds.yaml: a pcap, pcapng or csv feed "
                        "with a sensor_id gets that sensor's records; a csv feed with "
                        "sensor_id_column gets the records of the sensors of the first zone of "
                        "the first mall of objects.yaml whose timezone is the feed's (less "
                        "sensors an earlier feed took). Those records leave the SPEC files "
                        "(same world, same arrivals, duplicates and re-deliveries). Files go to "
                        "<glob's leading folders without wildcards>/<arrival date>/<usual "
                        "name>.pcap|pcapng|csv[.gz]; a glob that does not claim that path is "
                        "an error")
    return p


def main(argv: list[str] | None = None) -> int:
    from . import generate, make_objects, write_objects_yaml, write_pipeline_yaml

    args = build_parser().parse_args(argv)
    conf = Path(args.conf)
    if args.new_world:
        tree = make_objects(seed=args.seed)
        write_objects_yaml(conf / "objects.yaml", tree)
        names = ", ".join(f"{m['id']} {m['name']}" for m in tree["malls"])
        print(f"wrote {conf / 'objects.yaml'} (malls {names})")
        if not (conf / "pipeline.yaml").exists():
            write_pipeline_yaml(conf / "pipeline.yaml")
            print(f"wrote {conf / 'pipeline.yaml'}")
    if not (conf / "objects.yaml").exists():
        print(f"error: {conf / 'objects.yaml'} not found (use --new-world to create one)",
              file=sys.stderr)
        return 2
    if not 0 <= args.bad_share < 0.5 or not 0 <= args.gz_share <= 1:
        print("error: --bad-share must be in [0, 0.5), --gz-share in [0, 1]", file=sys.stderr)
        return 2
    try:
        landing = Path(args.landing) if args.landing else default_landing(conf)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    feeds = None
    if args.feeds:
        from jobs.configfile import ConfigError
        from jobs.feeds import FEEDS_FILE, load_feeds

        try:
            feeds = load_feeds(conf)
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if not feeds.feeds:
            print(f"note: --feeds: no feeds in {conf / FEEDS_FILE}: SPEC files only",
                  file=sys.stderr)
    try:
        summary = generate(conf, landing, start=args.start, days=args.days,
                           devices=args.devices, target_probes=args.target_probes,
                           seed=args.seed, bad_share=args.bad_share, gz_share=args.gz_share,
                           clean=args.clean, feeds=feeds)
    except ValueError as e:
        if feeds is None:
            raise
        print(f"error: {e}", file=sys.stderr)  # a feed the generator cannot follow
        return 2
    print(summary.text())
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
