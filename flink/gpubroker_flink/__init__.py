"""GPUBROKER stream analytics on Apache Flink."""
