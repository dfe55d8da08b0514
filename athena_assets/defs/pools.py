"""The concurrency pools of the assets that call a model, so every path (UI, sensors, schedules, UI
backfills, `athena backfill` in-process) waits for the model instead of overloading it.

Each model is one server (or one in-process model) shared by every run: two runs embedding at once
only halve each other's speed, two runs asking the single-slot reasoning server time out against it,
and two LLMLingua-2 models in memory at once cost a gigabyte for nothing. Both instance configs (the
local stack's and docker/dagster.yaml) set `concurrency.pools.default_limit: 1`; a deployment with more
replicas raises a pool's limit with `dagster instance concurrency set <pool> <n>`.
"""

EMBEDDING_POOL = "embedding_model"
REASONING_POOL = "reasoning_model"
COMPRESSION_POOL = "compression_model"
