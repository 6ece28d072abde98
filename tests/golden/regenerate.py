#!/usr/bin/env python
"""Rewrite tests/golden/compare_tiny_results.csv from the current code (only after a change
that is meant to move numbers; say which and why in the commit).

    python tests/golden/regenerate.py
"""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from golden import EXPECTED, golden_results  # noqa: E402

if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        EXPECTED.write_text(golden_results(Path(tmp) / "cmp", Path(tmp) / "datasets"))
    print(f"wrote {EXPECTED}")
