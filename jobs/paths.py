"""Where the project's own files are: the JARs, the Spark log settings, the driver JVM's
class archive (and the driver options that use them), the spark-submit entry point, and
the default config folder. Spark-free (the DAG files import it at parse time).

The project folder is ``$FOOTFALL_HOME`` when set, else the folder holding this package
(an editable install, ``make setup``, keeps the package in the checkout). Imported from
the artifact of ``make dist`` (a zip on ``--py-files``) it is ``$FOOTFALL_HOME`` or the
working directory: the jobs then find their config from ``--conf``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from importlib import resources
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: True when the package is imported from a zip (``--py-files footfall-<version>.zip``).
IN_ZIP = not PACKAGE_DIR.is_dir()
#: The project folder: conf/, data/ and .cache/jars/ are under it.
PROJECT_ROOT = Path(os.environ.get("FOOTFALL_HOME")
                    or (Path.cwd() if IN_ZIP else PACKAGE_DIR.parent)).resolve()
#: Delta Lake's JARs, resolved once from Maven Central by `make setup`.
JAR_DIR = PROJECT_ROOT / ".cache" / "jars"
#: The object-store connectors (S3A and the AWS SDK modules it loads), resolved with them.
S3_JAR_DIR = PROJECT_ROOT / ".cache" / "s3-jars"
#: The driver JVM's class-data-sharing archive, written by `make setup`
#: (build/jvm_archive.py); a driver starts without it when it is absent.
JVM_ARCHIVE = PROJECT_ROOT / ".cache" / "jvm" / "footfall.jsa"
#: The script spark-submit runs (``python -m jobs`` cannot be submitted).
ENTRYPOINT = PACKAGE_DIR / "entrypoint.py"


def jars() -> list[str]:
    """Every JAR a Footfall job puts on Spark's class path: Delta Lake's and the S3
    connector's (empty when `make setup` has not run)."""
    return sorted(str(p) for folder in (JAR_DIR, S3_JAR_DIR) for p in folder.glob("*.jar"))


def _real_file(name: str) -> Path:
    """A package file as a file on disk: the JVM cannot read one inside a zip, so that
    one is copied out once (named by its content) into the temp folder."""
    if not IN_ZIP:
        return PACKAGE_DIR / name
    data = resources.files(__package__).joinpath(name).read_bytes()
    out = Path(tempfile.gettempdir()) / f"footfall-{hashlib.sha256(data).hexdigest()[:12]}-{name}"
    if not out.exists():
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(out)
    return out


#: Quiet Spark logging for the driver JVM.
LOG_CONFIG = _real_file("log4j2.properties")


def driver_java_options(log_config: Path = LOG_CONFIG) -> str:
    """The options of a driver JVM started on this machine: the jobs' quiet logging, and
    the class archive of `make setup` when there is one. The JVM maps that archive only
    if it was written by the same JDK for the same class path, and otherwise starts as
    without it; its CDS messages are off so that such a start stays quiet."""
    options = f"-Dlog4j2.configurationFile=file:{log_config}"
    if JVM_ARCHIVE.is_file():
        options += f" -XX:SharedArchiveFile={JVM_ARCHIVE} -Xlog:cds=off -Xlog:cds+dynamic=off"
    return options
