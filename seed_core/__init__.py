"""The foundation every package of seed-transfer stands on, and that knows nothing of SEED.

- :mod:`.config`, :mod:`.value_ranges`: typed configs from YAML with ``_base_`` inheritance and
  ``key=value`` overrides; every numeric key's range checked before anything runs;
- :mod:`.errors`: the user-error types and the one-line report with exit status 2;
- :mod:`.atomic`, :mod:`.run_info`, :mod:`.run_lock`, :mod:`.metrics_log`: writing a run folder
  (atomic files, what produced it, one writer at a time, a CSV/TensorBoard log);
- :mod:`.checkpoint_files`, :mod:`.safe_pickle`: reading weights and pickles without running code;
- :mod:`.bad_images`: image files that cannot be read, found and skipped;
- :mod:`.distributed`, :mod:`.runtime`: process groups, and the training runtime every loop runs on.

The SEED method lives in :mod:`distill`, the evaluation in :mod:`seed_transfer`; both import this
package, and it imports neither (``tests/test_layers.py``).
"""
