"""Building records: log, run/replicate launcher, import, git provenance, run.log and sidecar parsing,
champion events."""
