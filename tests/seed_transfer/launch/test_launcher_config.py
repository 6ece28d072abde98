import pytest

from distill.config import ConfigError
from seed_transfer.launch import LauncherConfig, load_launcher_config, split_launcher_argv, split_launcher_overrides


def test_launcher_overrides_are_split_from_the_tools_and_typed():
    ours, rest = split_launcher_overrides(
        ["optim.epochs=2", "launcher.nodes=2", "data.root=/x", "launcher.partition=learnlab"]
    )
    assert rest == ["optim.epochs=2", "data.root=/x"]
    cfg = load_launcher_config("slurm", ours)
    assert (cfg.launcher, cfg.nodes, cfg.partition, cfg.gpus_per_node) == ("slurm", 2, "learnlab", 1)
    assert cfg.world_size == 2
    assert load_launcher_config(None, []) == LauncherConfig()


@pytest.mark.parametrize(
    "flag, overrides, message",
    [
        ("pbs", [], r"launcher.launcher: 'pbs' is not one of local, torchrun, slurm"),
        ("slurm", ["nodes=0"], r"launcher.nodes must be at least 1"),
        ("slurm", ["max_requeues=-1"], r"launcher.max_requeues must be 0 or more"),
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
