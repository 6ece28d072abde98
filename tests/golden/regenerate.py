#!/usr/bin/env python
"""Rewrite this CPU kind's golden results.csv (``golden.GOLDEN``) from the current code: only after a
change that is meant to move numbers (say which and why in the commit), or on a CPU kind that has
none yet (then add the file to ``GOLDEN``, with the kind this prints).

    python tests/golden/regenerate.py
"""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from golden import HERE, cpu_kind, expected_file, golden_results  # noqa: E402

if __name__ == "__main__":
    kind = cpu_kind()
    path = expected_file(kind) or HERE / "compare_tiny_results_new_cpu_kind.csv"
    with tempfile.TemporaryDirectory() as tmp:
        path.write_text(golden_results(Path(tmp) / "cmp", Path(tmp) / "datasets"))
    print(f"wrote {path} (CPU kind {kind})")
