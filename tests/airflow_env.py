"""Airflow for the tests: a throw-away AIRFLOW_HOME with a SQLite metadata database,
this repo's dags/, no examples, and the Spark connection on local[2].

Airflow reads its settings when first imported, so :func:`use_airflow` must run before
any ``import airflow`` of the test session (other tests may already have set
``AIRFLOW_HOME``: then that home is used).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.helpers import ROOT

VENV_BIN = str(Path(sys.executable).parent)
_migrated: set[str] = set()


def use_airflow() -> Path:
    """Point Airflow at a temporary home (once per session) and return it."""
    home = os.environ.get("AIRFLOW_HOME")
    if not home or "airflow" not in sys.modules and not Path(home).is_relative_to(tempfile.gettempdir()):
        home = tempfile.mkdtemp(prefix="footfall-airflow-")
        atexit.register(shutil.rmtree, home, ignore_errors=True)
        os.environ["AIRFLOW_HOME"] = home
    os.environ.update({
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
        # spark-submit (the provider calls it from PATH) and find-spark-home need the venv.
        "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
    })
    return Path(home)


def migrate_db() -> Path:
    """``airflow db migrate`` the test home's SQLite database (once per session)."""
    home = use_airflow()
    if str(home) not in _migrated:
        out = subprocess.run([str(Path(VENV_BIN) / "airflow"), "db", "migrate"], capture_output=True,
                             text=True, env=os.environ.copy(), timeout=600)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        _migrated.add(str(home))
    return home
