"""Keep the confirmatory run's finished results in the repository, member by member, so that the run
continues in a later session on another machine (a session's machine and its /root go with it).

    python docs/results/compare_confirm/keep_results.py /root/exp/confirm     # copy whole members here
    cp -r docs/results/compare_confirm/run/. /root/exp/confirm                # later: restore, then the
                                                                              # same compare command

Only a *whole* member is kept: every classification result of its row and, for the fine-tuned members,
every detection seed's metrics (students, checkpoints and converted backbones, hundreds of MB, are not
kept). A whole member's student is then not distilled again (``results_outlive_student``); a member with
results missing is left out entirely, so that nothing of it mixes with a re-distilled student. Also kept:
``registration.json`` (the design fixed when the run began), ``config.yaml``, ``stages.json`` and every
distillation's ``metrics.csv``, ``config.yaml`` and ``run_info.json`` (the stale rule reads config.yaml).
"""

import shutil
import sys
from pathlib import Path

from seed_core.config import load_config
from seed_transfer.pipelines.compare.plan import resolve
from seed_transfer.pipelines.compare.run import seeds_done
from seed_transfer.pipelines.compare.schema import CompareConfig

HERE = Path(__file__).resolve().parent
KEPT = HERE / "run"
SMALL = (".json", ".csv", ".yaml", ".log", ".txt", ".md", ".png")


def main(output_dir: str) -> None:
    out = Path(output_dir)
    # the resolved config: written by the last (report) pass; before it, the job graph's copy
    config = out / "config.yaml" if (out / "config.yaml").is_file() else out / "dag" / "config.yaml"
    cfg = load_config(CompareConfig, config, [f"output_dir={out}"])
    plan = resolve(cfg)
    det = {run.row.tag: run for run in plan.det}
    kept, missing = [], []
    for row in plan.rows:
        results = [run.result for run in plan.cls if run.row == row]
        tuned = det.get(row.tag)
        whole = all(r.is_file() for r in results) and (tuned is None or seeds_done(tuned.out, tuned.seeds))
        if not whole:
            missing.append(row.tag)
            continue
        files = list(results)
        if tuned is not None:
            files += [f for f in tuned.out.rglob("*") if f.is_file() and f.suffix in SMALL]
        if row.strategy:
            folder = out / "distill" / Path(row.weights).parent.name
            files += [folder / n for n in ("metrics.csv", "config.yaml", "run_info.json") if (folder / n).is_file()]
        for f in files:
            target = KEPT / f.relative_to(out)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
        kept.append(row.tag)
    for name in ("registration.json", "config.yaml", "stages.json", "dag/config.yaml"):
        if (out / name).is_file():
            (KEPT / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(out / name, KEPT / name)
    print(f"kept {len(kept)} whole rows: {' '.join(kept)}")
    print(f"not kept (results missing): {' '.join(missing)}")


if __name__ == "__main__":
    main(sys.argv[1])
