"""Side-by-side benchmarks of streamnet and its peers (``python -m benchmarks``)."""
