"""Typed clients for everything outside the pipeline: settings, model files, the local stack, llama.cpp.

Nothing in this package defines Dagster assets; every module is usable from a plain script.
"""
