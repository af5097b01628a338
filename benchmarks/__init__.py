"""Load generators that drive the real stack and print throughput and latency figures."""
