"""`/metrics` in Prometheus text format (prometheus-client), correct with `processes: N`."""
