"""Local infrastructure helpers: the backing services Letro needs on one machine."""
