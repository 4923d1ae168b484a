"""The journal: the record model and schema, the locked append-only store (a file or PostgreSQL), codecs."""
