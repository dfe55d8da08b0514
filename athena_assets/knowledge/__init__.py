"""How episodic events become knowledge, without Dagster: clustering a day's event vectors
(`clustering.py`), asking the reasoning model about each cluster (`cluster_prompt.py` says what it is
shown, `ask_model.py` asks it), checking every answer against its evidence (`gate.py`), building a
pattern from the events where no answer passes (`extractive_pattern.py`), and one day end to end
(`consolidate_day.py`). The `consolidated_patterns` asset and the benchmarks run the same steps.
"""
