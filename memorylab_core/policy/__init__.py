"""Decisions: promotion (keep / confirmed), the champion registry and decision packets."""
