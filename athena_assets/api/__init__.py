"""The application layer: each thing a user or an assistant does with the memory, written once.

    cli/ (parses, prints)   mcp/ (maps tools)   compat/ (the seed's client)   benchmarks/
                 \\               |                  /                          /
                  athena_assets/api/  (this package: the use cases)
                 /                                  \\
    athena_assets/defs/ (Dagster assets, checks,     resources/ (typed clients of PostgreSQL,
    sensors, schedules)                               llama.cpp, LLMLingua, the local stack)

Every use case takes an `App` (`app.py`): one deployment's settings and the resources built from them.
`ingest`, `remember`, `backfill`, `recall`, `patterns`, `context`, `metrics` and `stack` each have
their module here; the front ends import these modules and nothing below them.
"""
