#!/usr/bin/env python3
"""MemoryLab CLI: ``python memorylab.py --help``. All logic lives in memorylab_core/."""

import sys

from memorylab_core.cli import main

if __name__ == "__main__":
    sys.exit(main())
