"""The installable package: `pip install -e .` (make setup) gives the `footfall` command,
`python -m jobs` keeps working, and the DAGs import the installed package."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import jobs
import reports

ROOT = Path(__file__).resolve().parent.parent
FOOTFALL = Path(sys.executable).parent / "footfall"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd="/")


def test_the_footfall_command_lists_the_jobs_and_the_reports_commands():
    out = _run(str(FOOTFALL), "--help")
    assert out.returncode == 0, out.stderr
    for command in ("nightly", "backfill", "maintain", "show", "generate", "reports"):
        assert command in out.stdout
    out = _run(str(FOOTFALL), "reports", "--help")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: footfall reports")
    for command in ("serve", "token", "group-datetime", "export"):
        assert command in out.stdout


def test_python_dash_m_keeps_working_from_any_folder():
    for module in ("jobs", "reports"):
        out = _run(sys.executable, "-m", module, "--help")
        assert out.returncode == 0, out.stderr


def test_the_installed_packages_are_this_checkout_and_pyproject_lists_every_package():
    assert Path(jobs.__file__).parent == ROOT / "jobs"
    assert Path(reports.__file__).parent == ROOT / "reports"
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {str(p.parent.relative_to(ROOT)).replace("/", ".")
               for top in ("jobs", "reports") for p in (ROOT / top).rglob("__init__.py")}
    assert listed == on_disk


def test_dag_files_import_the_installed_package_without_path_edits():
    for dag_file in sorted((ROOT / "dags").glob("*.py")):
        assert "sys.path" not in dag_file.read_text(), dag_file.name
