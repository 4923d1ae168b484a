"""MemoryLab: research operations for autoresearch (standard library only)."""

__version__ = "0.1.0"
