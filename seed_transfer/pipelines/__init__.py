"""Pipelines of several stages: the comparison of initialisations (:mod:`.compare`) and the
ablation grid (:mod:`.ablation`), with their stage bookkeeping, stale-output rule and paired
statistics. Each is split into ``schema`` (its config), ``run`` (the stages) and ``report``
(tables and plots from finished outputs; it never imports the runner)."""
