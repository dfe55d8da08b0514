"""Prompts sent to the reasoning model, one module per task, each with its own `PROMPT_VERSION`.

An asset that uses a prompt puts its version into its `code_version`, so editing the wording (or the
answer schema) marks the asset's partitions stale in the UI.
"""
