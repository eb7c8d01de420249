"""Apache Spark as the build engine (`CALLMETRICS_TARGET=spark`; README, "Spark").

- `server`: a local Spark Thrift server for development and tests (`callmetrics spark
  start|stop|status`), started through pyspark's `spark-submit` and stopped by its PID;
- `extra`: whether the optional `[spark]` extra is installed, and the one line saying what to
  install when it is not;
- `marts`: after dbt built on Spark, the marts Spark wrote (Parquet table folders) are copied
  into the run's DuckDB work file, which publishing, the exporter and the API read as always.
"""
