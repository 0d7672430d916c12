"""How a Spark run gets Footfall's code (airflow.yaml ``spark.code``): the installed
package, or the artifact of ``make dist`` shipped with every run (``--py-files``), and the
PythonRunner form that runs such a driver in cluster deploy mode on a standalone master.
Spark-free: the DAG files import it at parse time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.configfile import ConfigError
from jobs.paths import ENTRYPOINT, LOG_CONFIG

if TYPE_CHECKING:
    from jobs.orchestration import AirflowSettings

#: The main class of a Python driver in a JVM: spark-submit refuses a Python application
#: in cluster deploy mode on a standalone master, but not a JAR whose main class is this
#: one (its arguments: the script, the --py-files, then the script's own).
PYTHON_RUNNER = "org.apache.spark.deploy.PythonRunner"
#: The JVM options spark-submit gives a driver JVM it starts itself (Spark 4.2's
#: org.apache.spark.launcher.JavaModuleOptions; tests/test_cluster.py compares). A driver a
#: standalone worker starts gets none of them, and Arrow (createDataFrame) then fails with
#: "sun.misc.Unsafe or java.nio.DirectByteBuffer.<init>(long, int) not available".
DRIVER_JAVA_OPTIONS = (
    "-XX:+IgnoreUnrecognizedVMOptions --add-modules=jdk.incubator.vector "
    "--add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.lang.invoke=ALL-UNNAMED "
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED "
    "--add-opens=java.base/java.net=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED "
    "--add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.util.concurrent=ALL-UNNAMED "
    "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED "
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED "
    "--add-opens=java.base/sun.nio.cs=ALL-UNNAMED --add-opens=java.base/sun.security.action=ALL-UNNAMED "
    "--add-opens=java.base/sun.util.calendar=ALL-UNNAMED "
    "--add-opens=java.security.jgss/sun.security.krb5=ALL-UNNAMED "
    "-Dio.netty.tryReflectionSetAccessible=true -Dio.netty.allocator.type=pooled "
    "-Dio.netty.handler.ssl.defaultEndpointVerificationAlgorithm=NONE "
    "--sun-misc-unsafe-memory-access=allow --enable-native-access=ALL-UNNAMED")


@dataclass(frozen=True)
class CodeFiles:
    """What a run gets its code from (``spark.code``)."""

    entry: str              #: the script the driver runs
    py_files: str | None    #: the zip for ``--py-files`` (None: the installed package)
    log_config: Path        #: the driver JVM's log settings
    driver_jar: str | None  #: the empty JAR PythonRunner's submissions name (None: installed)


def code_files(settings: AirflowSettings) -> CodeFiles:
    """The files of ``spark.code``; ConfigError when the artifact folder lacks ``make
    dist``'s files, or the PythonRunner form (:attr:`AirflowSettings.python_runner`) has
    no artifact."""
    if settings.code == "installed":
        if settings.python_runner:
            raise ConfigError("airflow.yaml: spark.standalone_master with deploy_mode cluster needs "
                              "code: artifact (the driver starts from make dist's driver.jar, "
                              "entrypoint.py and zip)")
        return CodeFiles(str(ENTRYPOINT), None, LOG_CONFIG, None)
    folder = Path(settings.artifact_dir)
    zips = sorted(folder.glob("footfall-*.zip"))
    needed = ["entrypoint.py", *(["driver.jar"] if settings.python_runner else [])]
    if len(zips) != 1 or not all((folder / n).is_file() for n in needed):
        found = ", ".join(sorted(p.name for p in folder.iterdir())) if folder.is_dir() else "no folder"
        raise ConfigError(f"airflow.yaml: spark.artifact: {folder} must hold what `make dist` "
                          f"writes (one footfall-<version>.zip and {' and '.join(needed)}); "
                          f"found: {found or 'nothing'}")
    jar = folder / "driver.jar"
    return CodeFiles(str(folder / "entrypoint.py"), str(zips[0]), folder / "log4j2.properties",
                     str(jar) if jar.is_file() else None)


def job_args(settings: AirflowSettings, args: list[str]) -> list[str]:
    """The SparkSubmitOperator's ``application_args`` for the jobs' arguments ``args``
    (``nightly --date D …``): these, or with PythonRunner (:attr:`AirflowSettings.python_runner`)
    the script and the zip before them, as PythonRunner takes its arguments."""
    if not settings.python_runner:
        return list(args)
    code = code_files(settings)
    return [code.entry, code.py_files, *args]
