"""The journal: record model, locked append-only JSONL store, history fold and its derived index."""
