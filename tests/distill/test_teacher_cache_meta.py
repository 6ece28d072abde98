"""A damaged teacher-cache ``meta.json`` (truncated, not JSON, a field missing or of the wrong
type) is refused in one line that names the file and says to delete the cache folder (issue 27
item 5): a CacheError, a UserError, so the tools exit 2 before writing anything."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny import TINY, make_image_folder, tiny_cnn
from train_worker import BASE

from distill.schema import DistillConfig
from distill.teacher_cache import CacheError, TeacherCache
from distill.trainer import build_source
from seed_core.config import load_config
from seed_core.errors import UserError

REPO = Path(__file__).parents[2]
# tools/distill.py's main, in a process that also knows the tests' tiny architecture
TOOL = (
    f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import tiny; "
    "from seed_transfer.cli.distill import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A data folder, a teacher file, and the meta.json of their cache (written as a run writes it)."""
    root = tmp_path_factory.mktemp("meta")
    data = make_image_folder(root / "images", classes=2, per_class=4)
    torch.manual_seed(0)
    weights = root / "teacher.pth"
    torch.save(tiny_cnn()[0].state_dict(), weights)
    args = [
        *BASE,
        f"data.root={data}",
        f"teacher.weights={weights}",
        f"teacher.arch={TINY}",
        "teacher.layout=torchvision",
    ]
    return args, root


def open_cache(args, cache_dir) -> TeacherCache:
    cfg = load_config(DistillConfig, None, [*args, f"teacher.cache_dir={cache_dir}"])
    return TeacherCache.for_run(cfg, build_source(cfg), torch.device("cpu"))


def written_meta(args, cache_dir) -> Path:
    cache = open_cache(args, cache_dir)
    cache.create(16, torch.float32)
    return cache.folder / "meta.json"


def without(field):
    return lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != field})


def with_value(field, value):
    return lambda text: json.dumps({**json.loads(text), field: value})


DAMAGES = {
    "truncated": (lambda text: text[: len(text) // 2], r"is damaged \(not JSON: "),
    "empty": (lambda text: "", r"is damaged \(not JSON: "),
    "not text": (lambda text: "\udcff\x00garbage", r"is damaged \(not JSON: "),
    "a list": (lambda text: "[1, 2]", r"is damaged \(a JSON list, not an object\)"),
    "no embed_dim": (without("embed_dim"), r"is damaged \(no embed_dim\)"),
    "no key": (without("key"), r"is damaged \(no key\)"),
    "embed_dim a string": (with_value("embed_dim", "16"), r"is damaged \(embed_dim='16': of the wrong type\)"),
    "unknown dtype": (with_value("dtype", "int8"), r"is damaged \(dtype='int8'\)"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_meta_json_is_refused_naming_the_file_and_the_fix(setup, tmp_path, damage):
    args, _ = setup
    meta = written_meta(args, tmp_path / "cache")
    edit, reason = DAMAGES[damage]
    meta.write_bytes(edit(meta.read_text()).encode("utf-8", "surrogateescape"))
    with pytest.raises(CacheError, match=f"{meta} {reason}.*: delete the folder {meta.parent} and run again") as e:
        open_cache(args, tmp_path / "cache")
    assert isinstance(e.value, UserError) and "\n" not in str(e.value)


def test_a_meta_json_of_another_key_is_refused_as_before(setup, tmp_path):
    args, _ = setup
    meta = written_meta(args, tmp_path / "cache")
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "key": {"other": 1}}))
    with pytest.raises(CacheError, match=f"{meta} belongs to another cache .*: delete {meta.parent}"):
        open_cache(args, tmp_path / "cache")


def test_the_distillation_tool_exits_2_with_one_line_and_writes_nothing(setup, tmp_path):
    args, _ = setup
    meta = written_meta(args, tmp_path / "cache")
    meta.write_text(meta.read_text()[:40])  # cut mid-way, as a full disk or a bad copy leaves it
    out = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            TOOL,
            "--config",
            str(REPO / "configs/distill/base.yaml"),
            *args,
            f"teacher.cache_dir={tmp_path / 'cache'}",
            f"train.output_dir={out}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert f"error: {meta} is damaged (not JSON: " in line and f"delete the folder {meta.parent}" in line
    assert "Traceback" not in result.stderr
    assert not (out / "config.yaml").exists() and not (out / "checkpoint.pth").exists()
