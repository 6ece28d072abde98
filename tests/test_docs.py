"""The README and the pages under docs/ say what the code does: every command they show runs a tool
that exists with flags, configs and config keys that exist, every relative link leads to a file
(and heading) that exists, and the README stays a five-minute read.

Commands are read from the ```bash blocks of README.md and docs/*.md (not docs/results/, whose
pages record what was run at the time) and from inline code that starts with a tool. For each
command of ``python tools/<x>.py``, ``torchrun ... tools/<x>.py`` or a console script (``seed-*``,
from pyproject.toml): the tool exists; every ``--flag`` is in its ``--help`` (one subprocess per
tool, all started at once); every ``--config`` path without a placeholder exists; every
``key=value`` names a field of the tool's config dataclass (:data:`CONFIGS`). No tool runs.
"""

import dataclasses
import importlib
import re
import shlex
import subprocess
import sys
import types
import typing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
README_MAX_LINES = 220
PLACEHOLDERS = ("/path", "...", "<")  # a --config path holding one of these is the reader's to fill
PLACEHOLDER = "<placeholder>"  # what <...> in a command becomes before it is split (it may hold a quote)

# seed_transfer/cli/<module>.py -> the config dataclass its key=value overrides set, by prefix: ""
# for the tool's own config, "run." and "launcher." for the keys a fine-tuning request and a launcher
# read. transfer_det's other trailing arguments are Detectron2's KEY VALUE pairs, which no dataclass
# holds: they are not checked. cls_table, det_table and convert_d2 take no overrides.
CONFIGS = {
    "distill": {"": "distill.schema:DistillConfig"},
    "transfer_cls": {"": "seed_transfer.classification.schema:TransferClsConfig"},
    "eval_knn": {"": "seed_transfer.classification.schema:TransferClsConfig"},
    "eval_linear": {"": "seed_transfer.imagenet.schema:LinearEvalConfig"},
    "eval_semisup": {"": "seed_transfer.imagenet.schema:SemisupConfig"},
    "compare": {"": "seed_transfer.pipelines.compare.schema:CompareConfig"},
    "ablate": {"": "seed_transfer.pipelines.ablation.schema:AblationConfig"},
    "transfer_seg": {
        "run.": "seed_transfer.finetune:FinetuneRequest",
        "": "seed_transfer.segmentation.schema:SegTransferConfig",
    },
    "transfer_det": {"run.": "seed_transfer.detection.plan:DetRequest"},
    "cls_table": {},
    "det_table": {},
    "convert_d2": {},
}
LAUNCHER = "seed_transfer.launch.config:LauncherConfig"  # launcher.<key>=value of a @launchable tool


@dataclasses.dataclass
class Command:
    where: str  # page:line
    module: str  # seed_transfer/cli/<module>.py
    tool: str  # what the page runs: tools/<x>.py or a console script
    args: list[str]  # the tool's arguments

    def __str__(self) -> str:
        return f"{self.where} {self.tool}"


def console_scripts() -> dict[str, str]:
    """Console script name -> its seed_transfer.cli module name."""
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    return {name: target.split(":")[0].rsplit(".", 1)[1] for name, target in scripts.items()}


def tool_module(tool_file: Path) -> str | None:
    """tools/<x>.py -> the seed_transfer.cli module whose main it runs (None: none)."""
    found = re.search(r"from seed_transfer\.cli\.(\w+) import main", tool_file.read_text())
    return found[1] if found else None


def bash_lines(text: str) -> list[tuple[int, str]]:
    """(line number, command) of every ```bash block, continuation lines joined."""
    out, block, pending = [], False, None  # pending: (first line number, text so far) of a continued line
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith("```"):
            block = not block and line.strip() == "```bash"
            continue
        if not block:
            continue
        start, head = pending or (number, "")
        if line.rstrip().endswith("\\"):
            pending = (start, head + line.rstrip()[:-1] + " ")
        else:
            pending = None
            out.append((start, head + line))
    return out


def inline_commands(text: str, scripts: dict[str, str]) -> list[tuple[int, str]]:
    """(line number, command) of inline code that runs a tool, e.g. `python tools/compare.py --rerender <folder>`."""
    starts = ("python tools/", "torchrun ", *(f"{name} " for name in scripts))
    out, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            out += [(number, span) for span in re.findall(r"`([^`]+)`", line) if span.startswith(starts)]
    return out


def split_commands(line: str) -> list[list[str]]:
    """A shell line -> its simple commands as argument lists (comments dropped, split at && ; |)."""
    tokens = shlex.split(re.sub(r"<[^<>]*>", PLACEHOLDER, line), comments=True)
    commands, current = [], []
    for token in tokens:
        if token in ("&&", "||", ";", "|"):
            commands.append(current)
            current = []
        else:
            current.append(token)
    return [c for c in [*commands, current] if c]


def page_commands() -> tuple[list[Command], list[str]]:
    """Every command of the pages that runs a tool, and what the pages run that does not exist."""
    scripts = console_scripts()
    commands, missing = [], []
    for page in PAGES:
        text = page.read_text()
        for number, line in bash_lines(text) + inline_commands(text, scripts):
            for argv in split_commands(line):
                where = f"{page.relative_to(REPO)}:{number}"
                if argv[0].startswith("seed-"):
                    if argv[0] not in scripts:
                        missing.append(f"{where}: {argv[0]} is not a console script of pyproject.toml")
                    else:
                        commands.append(Command(where, scripts[argv[0]], argv[0], argv[1:]))
                    continue
                if argv[0] not in ("python", "python3", "torchrun", "bash"):
                    continue
                run = next((a for a in argv[1:] if a.endswith((".py", ".sh")) and not a.startswith("-")), None)
                if run is None:
                    continue
                if not (REPO / run).is_file():
                    missing.append(f"{where}: {run} does not exist")
                elif re.fullmatch(r"tools/[a-z]\w*\.py", run):
                    module = tool_module(REPO / run)
                    if module is None:
                        missing.append(f"{where}: {run} runs no seed_transfer.cli main")
                    else:
                        commands.append(Command(where, module, run, argv[argv.index(run) + 1 :]))
    return commands, missing


COMMANDS, MISSING = page_commands()


def help_argv(module: str) -> list[str]:
    """How to print the --help of the tool ``module``: its tools/ file as a page runs it, else its main."""
    tool = next((c.tool for c in COMMANDS if c.module == module and c.tool.startswith("tools/")), None)
    if tool:
        return [sys.executable, str(REPO / tool), "--help"]
    return [sys.executable, "-c", f"from seed_transfer.cli.{module} import main; main(['--help'])"]


@pytest.fixture(scope="module")
def helps() -> dict[str, str]:
    """Each tool's --help output by module, one subprocess per tool, two at a time (each is mostly
    the imports of torch: seconds)."""
    modules = sorted({c.module for c in COMMANDS})

    def run(module: str) -> str:
        result = subprocess.run(help_argv(module), capture_output=True, text=True, timeout=300, cwd=REPO)
        assert result.returncode == 0, f"{' '.join(help_argv(module))} failed:\n{result.stderr[-3000:]}"
        return result.stdout

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(modules, pool.map(run, modules)))


def is_launchable(module: str) -> bool:
    """Whether the tool's main takes --launcher and launcher.<key>=value (seed_transfer.cli.common.launchable)."""
    return "@launchable(" in (REPO / "seed_transfer" / "cli" / f"{module}.py").read_text()


def load(path: str) -> type:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def dataclass_of(annotation) -> type | None:
    """The dataclass an annotation holds (``X``, ``X | None``), else None."""
    if dataclasses.is_dataclass(annotation):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return next((a for a in typing.get_args(annotation) if dataclasses.is_dataclass(a)), None)
    return None


def missing_key(cls: type, key: str) -> str | None:
    """None when the dotted ``key`` names a field of ``cls`` (keys under a field that is not a
    dataclass, e.g. a dict of Detectron2 options, are that field's own); else what is missing."""
    for depth, part in enumerate(key.split(".")):
        hints = typing.get_type_hints(cls)
        if part not in {f.name for f in dataclasses.fields(cls)}:
            return f"{'.'.join(key.split('.')[:depth] + [part])} is not a field of {cls.__name__}"
        cls = dataclass_of(hints[part])
        if cls is None:
            return None
    return None


def config_problems(command: Command) -> list[str]:
    """What in ``command``'s --config and key=value overrides does not exist."""
    problems, args = [], command.args
    for i, arg in enumerate(args):
        if arg == "--config" and i + 1 == len(args):
            problems.append("--config without a path")
        path = arg.partition("=")[2] if arg.startswith("--config=") else args[i + 1] if arg == "--config" else None
        if path and not any(p in path for p in PLACEHOLDERS) and not (REPO / path).is_file():
            problems.append(f"--config {path} does not exist")
    configs = dict(CONFIGS[command.module])
    if is_launchable(command.module):
        configs["launcher."] = LAUNCHER
    for i, arg in enumerate(args):
        key = arg.partition("=")[0]
        if arg.startswith("-") or "=" not in arg or (i and args[i - 1] == "--config"):
            continue
        if not re.fullmatch(r"[A-Za-z_][\w.]*", key):
            problems.append(f"{arg}: not a key=value override")
            continue
        prefix = next((p for p in configs if p and key.startswith(p)), "")
        if prefix not in configs:
            problems.append(f"{arg}: {command.tool} takes no key=value overrides")
            continue
        problem = missing_key(load(configs[prefix]), key[len(prefix) :])
        if problem:
            problems.append(f"{arg}: {problem}")
    return problems


def test_every_tool_a_page_runs_exists():
    assert not MISSING, MISSING


def test_the_pages_show_commands():
    tools = {c.tool for c in COMMANDS}
    assert {"tools/compare.py", "tools/distill.py", "tools/transfer_cls.py", "tools/transfer_det.py"} <= tools
    assert all(c.module in CONFIGS for c in COMMANDS), {c.module for c in COMMANDS} - set(CONFIGS)


@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_every_flag_is_in_the_tools_help(command, helps):
    flags = {a.partition("=")[0] for a in command.args if re.fullmatch(r"--[a-z][\w-]*(=.*)?", a)}
    if is_launchable(command.module):
        flags.discard("--launcher")  # added around main by launchable, outside its parser
    missing = [f for f in sorted(flags) if not re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", helps[command.module])]
    assert not missing, f"{command}: {missing} not in `{command.tool} --help`"


@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_every_config_and_key_exists(command):
    assert not config_problems(command), f"{command}: {config_problems(command)}"


def slug(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {slug(m) for m in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def relative_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    links = re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", text)
    return [link for link in links if not re.match(r"[a-z]+:", link)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_leads_somewhere(page):
    broken = []
    for link in relative_links(page):
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link}: no {target.relative_to(REPO) if REPO in target.parents else target}")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            broken.append(f"{link}: no heading #{anchor} in {target.relative_to(REPO)}")
    assert not broken, f"{page.relative_to(REPO)}: {broken}"


def test_the_readme_is_short():
    lines = len((REPO / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to a page under docs/"
