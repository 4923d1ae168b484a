"""Building records: log, run/replicate launcher, import, git provenance, champion events."""
