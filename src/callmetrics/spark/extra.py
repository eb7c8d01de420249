"""The `[spark]` extra: checked before anything needs it, so a missing install is one line."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from callmetrics.errors import UserError
from callmetrics.settings import TARGET_ENV

INSTALL = "pip install -e '.[spark]'"
# import name -> the distribution that brings it
_MODULES = {"pyspark": "pyspark", "dbt.adapters.spark": "dbt-spark", "pyhive": "PyHive"}


def missing_packages() -> list[str]:
    """The distributions of the extra that are not installed."""
    missing = []
    for module, dist in _MODULES.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if not found:
            missing.append(dist)
    return missing


def require_spark_extra(why: str = f"{TARGET_ENV}=spark") -> None:
    """Raise UserError naming what to install when the extra is missing."""
    missing = missing_packages()
    if missing:
        raise UserError(
            f"{why} needs the Spark extra ({', '.join(missing)} not installed): run {INSTALL} "
            "(or `make install-test`)"
        )


def spark_home() -> Path:
    """Spark's own folder: pyspark's package, which ships the jars and bin/spark-submit."""
    require_spark_extra("a local Spark server")
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def require_java() -> str:
    """The `java` that runs Spark, or a one-line UserError saying what to install."""
    java = shutil.which("java")
    if java is None:
        raise UserError(
            "Spark needs Java 17 or later, and no `java` is on PATH: "
            "apt-get install openjdk-17-jre-headless"
        )
    return java
