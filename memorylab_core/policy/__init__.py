"""Decisions: promotion (keep / confirmed), the champion registry, honest gain estimates and decision packets."""
