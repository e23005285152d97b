"""Embeddings and what is measured on them: encode + cache, near-duplicates, splits, diversity, label quality, background jobs."""
