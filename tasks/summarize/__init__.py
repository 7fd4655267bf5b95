"""Summarize stage (MLLM-MSR): item summaries and recurrent user-preference summaries from an LLM backend."""
