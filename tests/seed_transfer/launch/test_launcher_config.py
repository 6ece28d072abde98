import pytest

from seed_core.config import ConfigError
from seed_transfer.launch import LauncherConfig, load_launcher_config, split_launcher_argv, split_launcher_overrides


def test_launcher_overrides_are_split_from_the_tools_and_typed():
    ours, rest = split_launcher_overrides(
        ["optim.epochs=2", "launcher.nodes=2", "data.root=/x", "launcher.partition=learnlab"]
    )
    assert rest == ["optim.epochs=2", "data.root=/x"]
    cfg = load_launcher_config("slurm", ours)
    # no GPU asked unless the user asks: a CPU partition takes the default job
    assert (cfg.launcher, cfg.nodes, cfg.partition, cfg.gpus_per_node) == ("slurm", 2, "learnlab", None)
    assert cfg.tasks == 1 and cfg.world_size == 2
    assert load_launcher_config(None, []) == LauncherConfig()


@pytest.mark.parametrize(
    "flag, overrides, message",
    [
        ("pbs", [], r"launcher.launcher: 'pbs' is not one of local, torchrun, slurm"),
        ("slurm", ["nodes=0"], r"launcher.nodes must be at least 1"),
        ("slurm", ["max_requeues=-1"], r"launcher.max_requeues must be at least 0, got -1"),
        ("slurm", ["executor=lsf"], r"launcher.executor: 'lsf'"),
        ("slurm", ["time_min=1", "signal_delay_s=60"], r"launcher.signal_delay_s must lie in"),
        (
            "slurm",
            ["gpu_per_node=8"],
            r"unknown config key 'launcher.gpu_per_node'; did you mean 'launcher.gpus_per_node'",
        ),
    ],
)
def test_bad_launcher_settings_name_the_key(flag, overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_launcher_config(flag, overrides)


def test_a_tools_command_line_loses_the_launchers_options_only():
    argv = ["--config", "c.yaml", "--launcher", "slurm", "optim.epochs=2", "launcher.nodes=2", "--resume"]
    cfg, rest = split_launcher_argv(argv)
    assert (cfg.launcher, cfg.nodes) == ("slurm", 2) and rest == ["--config", "c.yaml", "optim.epochs=2", "--resume"]
    assert split_launcher_argv(["--launcher=torchrun"])[0].launcher == "torchrun"
    assert split_launcher_argv(["--config", "c.yaml"]) == (None, ["--config", "c.yaml"])
    with pytest.raises(ConfigError, match="--launcher needs a value"):
        split_launcher_argv(["--config", "c.yaml", "--launcher"])


def test_tasks_per_node_default_to_one_per_gpu_else_one():
    assert load_launcher_config("slurm", ["gpus_per_node=8"]).tasks == 8
    assert load_launcher_config("slurm", ["tasks_per_node=2"]).tasks == 2  # 2 CPU processes, no GPU
    assert load_launcher_config("slurm", ["gpus_per_node=4", "tasks_per_node=1", "nodes=2"]).world_size == 2
    with pytest.raises(ConfigError, match=r"launcher.gpus_per_node must be at least 1 \(or null\), got 0"):
        load_launcher_config("slurm", ["gpus_per_node=0"])


def test_every_launcher_key_has_a_help_line_and_every_launchable_tool_shows_them():
    import subprocess
    import sys
    from dataclasses import fields
    from pathlib import Path

    from seed_transfer.launch.config import KEY_HELP, launcher_help

    assert set(KEY_HELP) == {f.name for f in fields(LauncherConfig)}
    assert "launcher.gpus_per_node=null" in launcher_help()
    repo = Path(__file__).resolve().parents[3]
    for tool in ("distill", "transfer_det", "transfer_seg", "eval_linear", "compare", "ablate", "eval_semisup"):
        result = subprocess.run(
            [sys.executable, str(repo / "tools" / f"{tool}.py"), "--help"], capture_output=True, text=True
        )
        assert result.returncode == 0 and "--launcher local|torchrun|slurm" in result.stdout, tool
        assert "launcher.max_requeues=3" in result.stdout, tool


def test_an_sbatch_refusal_becomes_one_line_naming_the_key():
    from seed_transfer.launch.submit import refusal_line

    cfg = load_launcher_config("slurm", ["gpus_per_node=1", "partition=cpu"])
    line = refusal_line("sbatch: error: Invalid generic resource (gres) specification\n", cfg)
    assert line.startswith("SLURM refused the job (sbatch: error: Invalid generic resource (gres) specification)")
    assert "launcher.gpus_per_node" in line and "1 GPU(s) per node, partition cpu" in line and "\n" not in line
    line = refusal_line("sbatch: error: invalid partition specified: gpu\n", load_launcher_config("slurm", []))
    assert "change launcher.partition" in line and "no GPU" in line


def test_a_dag_is_chained_on_slurm_and_waited_on_elsewhere_unless_told():
    assert not load_launcher_config("slurm", []).waits  # SLURM holds the graph: the command returns
    assert load_launcher_config("slurm", ["wait=true"]).waits
    assert load_launcher_config("slurm", ["executor=local"]).waits  # local processes: no SLURM dependencies
    assert load_launcher_config("slurm", ["max_jobs=4"]).waits  # a cap needs a process that holds jobs back
    with pytest.raises(ConfigError, match="launcher.wait=false chains the jobs with SLURM dependencies"):
        load_launcher_config("slurm", ["executor=local", "wait=false"])
    with pytest.raises(ConfigError, match="a chained graph .* is submitted whole"):
        load_launcher_config("slurm", ["wait=false", "max_jobs=4"])
