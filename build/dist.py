"""`make dist`: the code of a Spark run as files that travel with the job, in dist/:

    footfall-<version>.zip                 the jobs and reports packages, for --py-files
    entrypoint.py                          the script spark-submit runs (jobs/entrypoint.py)
    log4j2.properties                      the driver JVM's log settings (a file, not in a zip)
    driver.jar                             an empty JAR: what spark-submit runs when Spark's
                                           PythonRunner starts the driver (cluster deploy mode
                                           on a standalone master, docs/airflow.md)
    footfall-<version>-py3-none-any.whl    the same packages to install on an image (--no-deps)

Spark puts a .zip on the Python path of the driver and of every executor; a .whl it
ships but leaves off the executors' path, hence both. Only the standard library builds
the zip; the wheel is pip's (`--no-wheel` skips it: pip fetches setuptools from the
package index for its isolated build).

    python build/dist.py [--out dist] [--no-wheel]
"""

from __future__ import annotations

import argparse
import fnmatch
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: A fixed time in the zip: the same sources give the same bytes.
STAMP = (1980, 1, 1, 0, 0, 0)


def project() -> tuple[str, str, list[str], dict[str, list[str]]]:
    """Name, version, packages and package data, as pyproject.toml lists them."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    tool = meta["tool"]["setuptools"]
    return (meta["project"]["name"], meta["project"]["version"], tool["packages"],
            tool.get("package-data", {}))


def package_files(packages: list[str], data: dict[str, list[str]]) -> list[Path]:
    """Each package's modules and listed data files, relative to the checkout."""
    files = []
    for pkg in packages:
        folder = ROOT / pkg.replace(".", "/")
        patterns = ["*.py", *data.get(pkg, [])]
        files += [p.relative_to(ROOT) for p in sorted(folder.iterdir())
                  if p.is_file() and any(fnmatch.fnmatch(p.name, pat) for pat in patterns)]
    return files


def build_zip(out: Path, name: str, version: str, files: list[Path]) -> Path:
    target = out / f"{name}-{version}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for rel in files:
            info = zipfile.ZipInfo(rel.as_posix(), STAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, (ROOT / rel).read_bytes())
    return target


def build_driver_jar(out: Path) -> Path:
    """A JAR with only a manifest: spark-submit's primary resource when the main class is
    Spark's own PythonRunner (a JAR is a zip; no JDK tool needed)."""
    target = out / "driver.jar"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo("META-INF/MANIFEST.MF", STAMP)
        info.external_attr = 0o644 << 16
        z.writestr(info, "Manifest-Version: 1.0\r\nCreated-By: footfall build/dist.py\r\n\r\n")
    return target


def build_wheel(out: Path) -> Path:
    # From a copy: an in-place build leaves build/lib and *.egg-info in the checkout.
    with tempfile.TemporaryDirectory(prefix="footfall-dist-") as tmp:
        for item in ("pyproject.toml", "README.md", "jobs", "reports"):
            src = ROOT / item
            (shutil.copytree(src, Path(tmp) / item, ignore=shutil.ignore_patterns("__pycache__"))
             if src.is_dir() else shutil.copy2(src, tmp))
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), tmp],
                       check=True)
    return next(out.glob("*.whl"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="build/dist.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder (emptied first)")
    p.add_argument("--no-wheel", action="store_true", help="only the zip and the files beside it")
    args = p.parse_args(argv)
    name, version, packages, data = project()
    out = args.out.resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    built = [build_zip(out, name, version, package_files(packages, data))]
    for f in ("entrypoint.py", "log4j2.properties"):
        built.append(Path(shutil.copy2(ROOT / "jobs" / f, out / f)))
    built.append(build_driver_jar(out))
    if not args.no_wheel:
        built.append(build_wheel(out))
    for f in built:
        print(f"{f}  ({f.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
