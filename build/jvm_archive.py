"""`make setup`'s last step: a class-data-sharing archive of the driver JVM's classes
(Java's AppCDS), so that every later Spark start loads Spark's, Delta's and Hive's
classes already parsed and verified from one mapped file, rather than from ~290 JARs.

It runs what a deployment runs, in one JVM: a small generated world (two malls, three
days, its feeds), a backfill of the first two arrival days, then the nightly run of the
third; the JVM writes every class it loaded (`-XX:ArchiveClassesAtExit`) when it ends
by `System.exit`. About two minutes, once; `jobs.spark.build_spark` then starts each
driver with `-XX:SharedArchiveFile` (docs/performance.md, "The driver's class archive").

    python build/jvm_archive.py [--out .cache/jvm/footfall.jsa]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jobs.paths import JVM_ARCHIVE, LOG_CONFIG  # noqa: E402

DAYS = ("2016-03-01", "2016-03-02", "2016-03-03")


def _hold_back(landing: Path, day: str, holding: Path) -> list[tuple[Path, Path]]:
    """Move every arrival folder of ``day`` (the SPEC files' and each feed's) aside."""
    moved = []
    for folder in sorted(p for p in landing.rglob(day) if p.is_dir()):
        target = holding / folder.relative_to(landing)
        target.parent.mkdir(parents=True, exist_ok=True)
        folder.rename(target)
        moved.append((target, folder))
    return moved


def write_archive(out: Path) -> None:
    """Run the small world through one JVM that writes its loaded classes to ``out``."""
    from jobs.__main__ import main

    with tempfile.TemporaryDirectory(prefix="footfall-jvm-archive-") as tmp:
        work = Path(tmp)
        conf = work / "conf"
        shutil.copytree(ROOT / "conf", conf)
        storage = yaml.safe_load((conf / "storage.yaml").read_text())
        partial = work / "footfall.jsa"
        storage["spark"]["conf"]["spark.driver.extraJavaOptions"] = (
            f"-Dlog4j2.configurationFile=file:{LOG_CONFIG} -XX:ArchiveClassesAtExit={partial} "
            "-Xlog:cds=error -Xlog:cds+dynamic=error")
        (conf / "storage.yaml").write_text(yaml.safe_dump(storage))
        landing, lake = work / "landing", work / "lakehouse"
        common = ["--conf", str(conf), "--landing", str(landing), "--lakehouse", str(lake),
                  "--quiet"]
        if main(["generate", "--conf", str(conf), "--landing", str(landing), "--start", DAYS[0],
                 "--days", str(len(DAYS)), "--devices", "12", "--feeds"]) != 0:
            raise SystemExit("jvm_archive: generating the small world failed")
        moved = _hold_back(landing, DAYS[-1], work / "held")
        with contextlib.redirect_stdout(io.StringIO()):
            if main(["backfill", "--from", DAYS[0], "--to", DAYS[-2], *common]) != 0:
                raise SystemExit("jvm_archive: the backfill failed")
            for held, folder in moved:
                held.rename(folder)
            if main(["nightly", "--date", DAYS[-1], *common]) != 0:
                raise SystemExit("jvm_archive: the nightly run failed")
        _exit_jvm()
        if not partial.is_file():
            raise SystemExit("jvm_archive: the JVM wrote no archive")
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(partial), out)


def _exit_jvm() -> None:
    """End the driver JVM by ``System.exit`` (the archive is written only then) and wait."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    with contextlib.suppress(Exception):  # the call cannot answer: the JVM is gone
        gateway.jvm.java.lang.System.exit(0)
    gateway.proc.wait(timeout=600)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=JVM_ARCHIVE)
    write_archive(p.parse_args().out)
    print(f"wrote {p.parse_args().out}")
