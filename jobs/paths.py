"""Where the project's own files are: the JARs, the Spark log settings, the
spark-submit entry point, and the default config folder. Spark-free (the DAG files
import it at parse time).

The project folder is ``$FOOTFALL_HOME`` when set, else the folder holding this package
(an editable install, ``make setup``, keeps the package in the checkout).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: The project folder: conf/, data/ and .cache/jars/ are under it.
PROJECT_ROOT = Path(os.environ.get("FOOTFALL_HOME") or PACKAGE_DIR.parent).resolve()
#: Delta Lake's JARs, resolved once from Maven Central by `make setup`.
JAR_DIR = PROJECT_ROOT / ".cache" / "jars"
#: The object-store connectors (S3A and the AWS SDK modules it loads), resolved with them.
S3_JAR_DIR = PROJECT_ROOT / ".cache" / "s3-jars"
#: Quiet Spark logging for the driver JVM.
LOG_CONFIG = PACKAGE_DIR / "log4j2.properties"
#: The script spark-submit runs (``python -m jobs`` cannot be submitted).
ENTRYPOINT = PACKAGE_DIR / "entrypoint.py"


def jars() -> list[str]:
    """Every JAR a Footfall job puts on Spark's class path: Delta Lake's and the S3
    connector's (empty when `make setup` has not run)."""
    return sorted(str(p) for folder in (JAR_DIR, S3_JAR_DIR) for p in folder.glob("*.jar"))
