"""What counts as evidence: arenas (what is comparable), run roles, validity, small-sample statistics,
crash kinds and what a run's log and sidecar say."""
