"""What counts as evidence: noise statistics and honest gain estimates."""
