"""The events asset's code version, apart from the asset so it can be read without importing Dagster
(`athena backfill` checks which days the current code loaded before it imports anything heavy)."""

EVENTS_CODE_VERSION = "2"  # 2: secrets redacted before storage
