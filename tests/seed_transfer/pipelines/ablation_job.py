"""The ablation DAG's job in the tests: registers the tiny test models (tests/distill/tiny.py, on
the jobs' PYTHONPATH), then runs the job as ``seed_transfer.pipelines.ablation.dag:run_job`` does."""

import tiny  # noqa: F401  (registers the tiny architectures)

from seed_transfer.pipelines.ablation.dag import run_job


def main(argv: list[str]) -> int:
    return run_job(argv)
