#!/usr/bin/env python3
"""MemoryLab CLI: ``python memorylab.py --help``. All logic lives in memorylab_core/."""

import sys


def _main() -> int:
    """Import the CLI and run it; Ctrl-C even while importing is one line and exit 130, no traceback."""
    try:
        from memorylab_core.cli import main

        return main()
    except KeyboardInterrupt:
        sys.stderr.write("memorylab: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(_main())
