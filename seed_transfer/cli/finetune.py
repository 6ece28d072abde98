"""The request of a fine-tuning command line (``seed-transfer-det``, ``seed-transfer-seg``).

A run's request (:class:`~seed_transfer.finetune.FinetuneRequest`: weights, seeds, output
folder, row name, ...) is set by ``run.<key>=<value>`` arguments, typed and checked like any
config key (``run.seeds=3 run.weights=student.pth``); the older flags (``--seeds 3``) are
aliases of the same keys. Giving one key both ways is an error, as is an unknown key.
"""

import argparse
from pathlib import Path

from seed_core.config import ConfigError, from_dict, parse_overrides
from seed_core.distributed import is_launch_main_process

from ..backbones import RANDOM, require_weights, weights_name

PREFIX = "run."
OWN_SYNTAX = ("config", "opts")  # --config and the engine's own overrides


def add_request_flags(parser: argparse.ArgumentParser, tool: str) -> None:
    """The flags every fine-tuning tool takes: aliases of ``run.<key>`` (default: the request's)."""
    parser.add_argument("--weights", default=None, help=f"= {PREFIX}weights (default: random)")
    parser.add_argument(
        "--arch", default=None, help=f"= {PREFIX}arch: architecture when the checkpoint does not record it"
    )
    parser.add_argument("--layout", default=None, help=f"= {PREFIX}layout (default: auto)")
    parser.add_argument(
        "--allow-unsafe-pickle",
        action="store_const",
        const=True,
        default=None,
        help=f"= {PREFIX}allow_unsafe_pickle=true",
    )
    parser.add_argument("--name", default=None, help=f"= {PREFIX}name: row label in summaries")
    parser.add_argument(
        "--output-dir", default=None, help=f"= {PREFIX}output_dir (default: outputs/{tool}/<config>/<name>)"
    )
    parser.add_argument("--seeds", type=int, default=None, help=f"= {PREFIX}seeds (default: 1)")
    parser.add_argument("--data-root", default=None, help=f"= {PREFIX}data_root: the folder holding the datasets")
    parser.add_argument(
        "--resume",
        action="store_const",
        const=True,
        default=None,
        help=f"= {PREFIX}resume=true: continue an interrupted seed from its last checkpoint",
    )
    parser.add_argument(
        "--overwrite",
        action="store_const",
        const=True,
        default=None,
        help=f"= {PREFIX}overwrite=true: start an interrupted seed over (removes its checkpoints); "
        "finished seeds (seed<k>/metrics.json) are kept and skipped",
    )


def split_request_keys(tokens: list[str]) -> tuple[list[str], list[str]]:
    """``tokens`` -> (the ``run.<key>=<value>`` ones without the prefix, the engine's own overrides)."""
    keys = [t[len(PREFIX) :] for t in tokens if t.startswith(PREFIX) and "=" in t]
    return keys, [t for t in tokens if not (t.startswith(PREFIX) and "=" in t)]


def build_request(
    cls: type, args: argparse.Namespace, tool: str, keys: list[str], opts: list[str], flags: dict[str, str]
):
    """The request ``cls`` of ``--config``, the flags (``flags``: request key -> flag name, for
    those ``args`` carries under the key's name), the ``run.*`` ``keys`` and the engine ``opts``.

    Checks the weights file before anything is written (the message names how it was given).
    """
    given = parse_overrides(keys)
    for key in given:
        if key in OWN_SYNTAX:
            raise ConfigError(f"{PREFIX}{key}: give it as {'--config' if key == 'config' else 'trailing overrides'}")
    data = {}
    for key, flag in flags.items():
        value = getattr(args, key)
        if value is None:
            continue
        if key in given:
            raise ConfigError(f"{flag} and {PREFIX}{key}= both set {PREFIX}{key}: give one")
        data[key] = value
    data.update(given)
    source = {key: (flags[key] if key in data and key not in given else PREFIX + key) for key in flags}
    data.setdefault("weights", RANDOM)
    require_weights(data["weights"], source.get("weights", f"{PREFIX}weights"), keywords=(RANDOM,))
    name = data.get("name") or weights_name(data["weights"])
    data.setdefault("output_dir", f"outputs/{tool}/{Path(args.config).stem}/{name}")
    data.update(config=args.config, opts=tuple(opts))
    return from_dict(cls, data, prefix=PREFIX)  # an unknown run.* key is named, with the close match


REQUEST_FLAGS = {
    "weights": "--weights",
    "arch": "--arch",
    "layout": "--layout",
    "allow_unsafe_pickle": "--allow-unsafe-pickle",
    "name": "--name",
    "output_dir": "--output-dir",
    "seeds": "--seeds",
    "data_root": "--data-root",
    "resume": "--resume",
    "overwrite": "--overwrite",
}


def run_transfer(
    tokens: list[str], request_cls: type, args: argparse.Namespace, tool: str, flags, transfer, table
) -> int:
    """The request of ``tokens`` (``run.<key>=<value>`` and the engine's overrides) and the flags, built
    and checked before any folder is made; then ``transfer(request)`` and its ``table`` row, printed by
    one process under torchrun."""
    keys, opts = split_request_keys(tokens)
    request = build_request(request_cls, args, tool, keys, opts, flags)
    summary = transfer(request)
    if is_launch_main_process():
        print(table([summary]))
        print(f"-> {request.output_dir}/summary.json")
    return 0
