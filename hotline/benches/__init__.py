"""Benchmarks: each starts a whole hotline (configuration, database, call centre) and prints JSON figures,
so they live on the top floor with the other composition. `python -m hotline.benches.<name>`."""
