"""seed_core.config.load_yaml, the one reader of YAML config files: plain values, no key given twice in
a mapping, and every error one line naming the file and the line(s)."""

import re

import pytest

from distill.schema import DistillConfig
from seed_core.config import ConfigError, load_config, load_yaml, parse_overrides

TEACHER = ["teacher.weights=/t.pth", "data.root=/x"]


def write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, key, lines",
    [
        ("optim:\n  epochs: 100\n  batch_size: 128\n  epochs: 50\n", "epochs", (2, 4)),  # inside a section
        ("optim:\n  epochs: 100\ndata:\n  root: /a\noptim:\n  base_lr: 0.1\n", "optim", (1, 5)),  # a whole section
        ("optim: {epochs: 100, epochs: 50}\n", "epochs", (1, 1)),  # a flow mapping, one line
        ("a: 1\n1: x\n'1': y\n1: z\n", 1, (2, 4)),  # the key 1 twice; the string '1' is another key
    ],
    ids=["key", "section", "flow mapping", "int key"],
)
def test_a_key_given_twice_names_the_key_the_file_and_both_lines(tmp_path, text, key, lines):
    path = write(tmp_path / "c.yaml", text)
    with pytest.raises(ConfigError) as refused:
        load_yaml(path)
    assert str(refused.value) == (
        f"{path}: key {key!r} is given twice in one mapping, at lines {lines[0]} and {lines[1]} "
        "(YAML would keep only the second value): keep one"
    )


def test_a_duplicate_in_a_base_file_names_the_base_file(tmp_path):
    base = write(tmp_path / "base.yaml", "optim:\n  epochs: 100\n  epochs: 200\n")
    child = write(tmp_path / "child.yaml", "_base_: base.yaml\noptim:\n  epochs: 50\n")
    with pytest.raises(
        ConfigError, match=re.escape(f"{base}: key 'epochs' is given twice in one mapping, at lines 2 and 3")
    ):
        load_config(DistillConfig, child, TEACHER)


def test_the_same_key_in_other_mappings_and_overridden_merge_keys_are_not_duplicates(tmp_path):
    text = "defaults: &d\n  epochs: 10\n  batch_size: 8\noptim:\n  <<: *d\n  epochs: 50\ndata:\n  epochs: 1\n"
    assert load_yaml(write(tmp_path / "c.yaml", text)) == {
        "defaults": {"epochs": 10, "batch_size": 8},
        "optim": {"epochs": 50, "batch_size": 8},
        "data": {"epochs": 1},
    }


@pytest.mark.parametrize(
    "text, line, problem",
    [
        (
            "optim:\n  epochs: [1, 2\n  batch_size: 8\n",
            3,
            "expected ',' or ']', but got ':' (while parsing a flow sequence from line 2)",
        ),
        ("optim:\n  epochs: 1\n   batch_size: 8\n", 3, "mapping values are not allowed here"),
        (
            "data:\n\troot: /a\n",
            2,
            "found character '\\t' that cannot start any token (while scanning for the next token)",
        ),
        ("data:\n  root: '/a\n", 3, "found unexpected end of stream (while scanning a quoted scalar from line 2)"),
    ],
    ids=["unclosed list", "indentation", "tab", "unclosed quote"],
)
def test_a_syntax_error_names_the_file_and_the_line(tmp_path, text, line, problem):
    path = write(tmp_path / "c.yaml", text)
    with pytest.raises(ConfigError) as refused:
        load_config(DistillConfig, path, TEACHER)
    assert str(refused.value) == f"{path}, line {line}: YAML syntax error: {problem}"


def test_python_tags_are_still_refused_and_never_run(tmp_path):
    marker = tmp_path / "marker"
    path = write(tmp_path / "c.yaml", f"data:\n  root: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}, line 2: could not determine a constructor for the tag")):
        load_config(DistillConfig, path, TEACHER)
    assert not marker.exists()


def test_control_characters_and_non_utf8_text_name_the_file(tmp_path):
    path = write(tmp_path / "c.yaml", "data:\n  root: /a\x07\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}, line 2: unacceptable character #x0007")):
        load_yaml(path)
    path.write_bytes(b"data:\n  root: /\xff\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: not UTF-8 text")):
        load_yaml(path)


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim={epochs: 1, epochs: 2}", "override 'optim={epochs: 1, epochs: 2}': key 'epochs' is given twice"),
        ("optim.epochs=[1", "override 'optim.epochs=[1': YAML syntax error"),
        ("data.root=!!python/name:os.system", "could not determine a constructor for the tag"),
    ],
)
def test_overrides_are_read_the_same_way(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_overrides([override])
