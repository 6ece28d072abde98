"""Detection transfer of one initialisation: convert the backbone, fine-tune with the
matched schedule for several seeds, and summarise AP / AP50 / AP75 as mean +- std.

Each seed writes ``<output_dir>/seed<k>/metrics.json`` and is skipped when that file
exists, so an interrupted comparison continues where it stopped.

Engines: ``detectron2`` (:mod:`seed_transfer.detection.d2`, converts the backbone to a ``.pkl``)
and ``torchvision`` (:mod:`seed_transfer.detection.tv`, loads the checkpoint directly; no
Detectron2 import); ``auto`` takes Detectron2 when it is installed, else torchvision. Both run
the same :class:`~seed_transfer.detection.plan.DetPlan` (made and checked before anything is
written) and write the same ``metrics.json``.
"""

from ..backbones import is_random
from ..finetune import PreparedWeights, markdown_table, prepare_weights, run_seeds, write_summary
from ..finetune import summarize as summarize_metrics
from .convert import convert_checkpoint, copy_detectron2_pkl
from .plan import DetPlan, DetRequest, make_plan

SUMMARY_METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
TABLE_METRICS = SUMMARY_METRICS[:3]
TASKS = ("bbox", "segm")


def prepare_backbone(plan: DetPlan) -> PreparedWeights:
    """The backbone as the plan's engine loads it: Detectron2 a ``.pkl`` in the output folder (a
    given one checked by the restricted unpickler and copied, since Detectron2 unpickles it freely;
    any other checkpoint converted; none for a random init, Detectron2's own), torchvision the
    checkpoint itself. A file that cannot be used is refused before anything is written."""
    weights = plan.request.weights
    if plan.engine == "torchvision":
        return PreparedWeights(None if is_random(weights) else str(weights), None)
    out_file = plan.request.output_dir / "backbone_d2.pkl"
    if not is_random(weights) and str(weights).endswith(".pkl"):
        copy_detectron2_pkl(weights, out_file)
        return PreparedWeights(str(out_file), {"init": "detectron2 pkl"})
    return prepare_weights(plan.request, out_file, convert_checkpoint)


def engine_run_seed(engine: str):
    """The engine's ``run_seed(plan, seed, seed_dir, backbone) -> metrics.json contents``."""
    if engine == "detectron2":
        from .d2.train_net import run_seed  # imports Detectron2
    else:
        from .tv.train import run_seed
    return run_seed


def summarize(per_seed: list[dict]) -> dict:
    """Mean and (sample) std over seeds of every task's metrics (``bbox``, ``segm``)."""
    summary = {}
    for task in TASKS:
        rows = [r["results"][task] for r in per_seed if task in r.get("results", {})]
        if rows:
            summary[task] = summarize_metrics(rows, SUMMARY_METRICS)
    return summary


def markdown_comparison(summaries: list[dict]) -> str:
    """One row per (initialisation, task): AP, AP50, AP75 as mean ± std over seeds."""
    return markdown_table(summaries, TABLE_METRICS, by_task=True)


def transfer(request: DetRequest | DetPlan) -> dict:
    """Fine-tune and evaluate ``request.weights`` for ``request.seeds`` seeds; returns the summary
    (with ``request.only_seed``: that seed's metrics, and no summary is written). A :class:`DetPlan`
    (a comparison's, resolved and checked before it ran anything) is run as it is."""
    plan = request if isinstance(request, DetPlan) else make_plan(request)  # every check, before anything is written
    request = plan.request
    backbone = prepare_backbone(plan)  # reads the weights before it writes its file
    request.output_dir.mkdir(parents=True, exist_ok=True)
    run_seed = engine_run_seed(plan.engine)
    per_seed = run_seeds(
        request.output_dir,
        request.seeds,
        lambda seed, seed_dir: run_seed(plan, request.seed_offset + seed, seed_dir, backbone),
        only=request.only_seed,
    )
    if request.only_seed is not None:
        return per_seed[0]
    return write_summary(request, plan.engine, per_seed, summarize(per_seed), markdown_comparison)


def run_detection_transfer(*args, **kwargs) -> dict:
    """:func:`transfer` of a resolved :class:`.plan.DetPlan` (``run_detection_transfer(plan)``, as a
    comparison hands its plans down) or of ``DetRequest(*args, **kwargs)``: the config file, the weights
    and the output folder, then keywords such as ``seeds``, ``opts`` and ``resume`` (:class:`.plan.DetRequest`)."""
    if len(args) == 1 and not kwargs and isinstance(args[0], DetPlan):
        return transfer(args[0])
    return transfer(DetRequest(*args, **kwargs))
