"""Benchmarks: synthetic clinic-network data at a chosen scale, and one command that measures
pages, the rules engine, the CSV export and a load run on it (``manage.py bench_generate``,
``manage.py bench``). No models: the app only brings its commands, a bench-only URL and its
template."""
