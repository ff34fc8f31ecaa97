// Prometheus metrics endpoint (being written).
