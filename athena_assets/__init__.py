"""athena-assets: the Dagster code location of the local-LLM side of an AI memory system."""
