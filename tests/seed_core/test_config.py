import pytest

from distill.schema import DistillConfig
from seed_core.config import ConfigError, dump_config, load_config, parse_overrides, resolve_path

TEACHER = ["teacher.weights=/t.pth"]


def write(path, text):
    path.write_text(text)
    return path


def test_inheritance_file_and_overrides_in_order(tmp_path):
    write(tmp_path / "base.yaml", "optim:\n  epochs: 100\n  batch_size: 128\ndata:\n  root: /a\n")
    child = write(tmp_path / "child.yaml", "_base_: base.yaml\noptim:\n  epochs: 50\n")
    cfg = load_config(DistillConfig, child, ["optim.base_lr=0.06", "distill.tau_teacher=1e-4", *TEACHER])
    assert cfg.optim.epochs == 50 and cfg.optim.batch_size == 128  # file over base, base kept
    assert cfg.optim.base_lr == 0.06 and cfg.distill.tau_teacher == 1e-4  # "1e-4" is a float here
    assert cfg.optim.weight_decay == 1e-4 and cfg.distill.queue_size == 65536  # paper defaults


def test_dump_then_load_round_trips(tmp_path):
    cfg = load_config(DistillConfig, None, ["data.root=/x", "student.arch=mobilenet_v3_large", *TEACHER])
    dump_config(cfg, tmp_path / "c.yaml")
    assert load_config(DistillConfig, tmp_path / "c.yaml") == cfg


def test_unknown_key_names_the_closest_valid_key():
    with pytest.raises(ConfigError, match=r"unknown config key 'distill.tau_teahcer'.*'distill.tau_teacher'"):
        load_config(DistillConfig, None, ["distill.tau_teahcer=0.1", "data.root=/x", *TEACHER])


@pytest.mark.parametrize(
    "override,message",
    [
        ("optim.epochs=ten", "optim.epochs: expected int"),
        ("train.amp=maybe", "train.amp: expected bool"),
        ("distill.strategy=kd", "choose one of seed, moco, l2, seed"),
        ("distill.tau_teacher=0", "must be > 0"),
        ("distill.queue_size=100", "queue_size=100 is smaller than the global batch"),
    ],
)
def test_bad_values_are_refused_with_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(DistillConfig, None, ["data.root=/x", *TEACHER, override])


def test_teacher_is_required_for_distillation_but_not_for_moco():
    with pytest.raises(ConfigError, match="needs a teacher: set teacher.weights"):
        load_config(DistillConfig, None, ["data.root=/x"])
    assert load_config(DistillConfig, None, ["data.root=/x", "distill.strategy=moco"]).teacher.weights is None


def test_missing_file_and_loops_and_malformed_overrides(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(DistillConfig, tmp_path / "nope.yaml")
    write(tmp_path / "a.yaml", "_base_: b.yaml\n")
    write(tmp_path / "b.yaml", "_base_: a.yaml\n")
    with pytest.raises(ConfigError, match="inheritance loops"):
        load_config(DistillConfig, tmp_path / "a.yaml")
    with pytest.raises(ConfigError, match="not of the form key=value"):
        parse_overrides(["optim.epochs"])


def test_a_missing_base_file_is_named_with_the_file_that_asks_for_it(tmp_path):
    write(tmp_path / "child.yaml", "_base_: [base.yaml, ../elsewhere/gone.yaml]\n")
    write(tmp_path / "base.yaml", "optim: {epochs: 3}\n")
    with pytest.raises(ConfigError) as err:
        load_config(DistillConfig, tmp_path / "child.yaml")
    assert str(err.value) == (
        f"{tmp_path / 'child.yaml'}: its _base_ file '../elsewhere/gone.yaml' is not found "
        f"(looked for {tmp_path.parent / 'elsewhere' / 'gone.yaml'})"
    )
    write(tmp_path / "odd.yaml", "_base_: {file: base.yaml}\n")
    with pytest.raises(ConfigError, match=r"odd.yaml: _base_ must be a file name or a list of them"):
        load_config(DistillConfig, tmp_path / "odd.yaml")


def test_package_paths_resolve_to_installed_files():
    assert resolve_path("pkg://seed_core/config.py").endswith("seed_core/config.py")
    with pytest.raises(ConfigError, match="not installed"):
        resolve_path("pkg://no_such_package_xyz/w.pth")


def test_shipped_configs_all_load():
    from pathlib import Path

    configs = sorted((Path(__file__).parents[2] / "configs" / "distill").glob("*.yaml"))
    assert len(configs) >= 8
    for path in configs:
        cfg = load_config(DistillConfig, path, ["data.root=/x", *TEACHER])
        assert cfg.optim.batch_size >= 1, path
