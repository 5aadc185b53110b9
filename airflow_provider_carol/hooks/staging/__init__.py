"""Staging intake: sources of records, strict JSON chunks, the concurrent sender, batches, schemas."""
