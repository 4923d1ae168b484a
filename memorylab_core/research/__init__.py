"""Research memory: insights, mistake cards, consolidation, health (the breaker), guide."""
