"""The design a comparison fixed before its first stage ran: ``<output_dir>/registration.json``.

The first invocation on an output folder records the number of members, the fine-tuned members and
seeds, and the primary comparisons, with the time and the code's commit. A later invocation that
asks for another design on the same folder runs (a user may extend a run), but the report says, in
its first lines, what changed after the run started: a change made after seeing data (optional
stopping, a question picked afterwards) is a different claim from the registered one."""

from __future__ import annotations

import json
import time
from pathlib import Path

from seed_core.run_info import code_version

from ...finetune import write_json
from .schema import CompareConfig

REGISTRATION_NAME = "registration.json"


def design(cfg: CompareConfig) -> dict:
    """What the registration fixes: the sizes and the questions (the settings are the stale rule's)."""
    return {
        "distill.strategies": list(cfg.distill.strategies),
        "distill.seeds": cfg.distill.seeds,
        "distill.first_member": cfg.distill.first_member,
        "det.members": cfg.det.members if cfg.det.enabled else None,
        "det.seeds": cfg.det.seeds if cfg.det.enabled else None,
        "seg.members": cfg.seg.members if cfg.seg.enabled else None,
        "seg.seeds": cfg.seg.seeds if cfg.seg.enabled else None,
        "primary": list(cfg.primary),
    }


def register(cfg: CompareConfig) -> dict:
    """The folder's registration, written now when it has none (before any stage runs)."""
    path = Path(cfg.output_dir) / REGISTRATION_NAME
    if path.is_file():
        return json.loads(path.read_text())
    code = code_version()
    record = {
        "design": design(cfg),
        "registered": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "commit": code.get("git_commit"),
        "uncommitted_changes": code.get("git_dirty"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(record, path)
    return record


def changes(cfg: CompareConfig, record: dict | None) -> list[str]:
    """``"distill.seeds: 8 when registered, 9 now"`` for every key of :func:`design` that differs."""
    if not record:
        return []
    fixed, now = record.get("design", {}), design(cfg)
    return [
        f"{key}: {fixed.get(key)!r} when registered, {value!r} now"
        for key, value in now.items()
        if fixed.get(key) != value
    ]


def registration_lines(cfg: CompareConfig) -> list[str]:
    """The report's lines on the registered design (none for a folder without a registration)."""
    path = Path(cfg.output_dir) / REGISTRATION_NAME
    if not path.is_file():
        return []
    record = json.loads(path.read_text())
    fixed = record.get("design", {})
    primary = "; ".join(fixed.get("primary") or []) or "none (every difference exploratory)"
    lines = [
        f"- **Design fixed before the first stage** ({REGISTRATION_NAME}, {record.get('registered')}, commit "
        f"`{(record.get('commit') or 'unknown')[:10]}`): {fixed.get('distill.seeds')} member(s) per strategy and "
        f"of random init from member {fixed.get('distill.first_member')}; primary comparisons: {primary}"
    ]
    changed = changes(cfg, record)
    if changed:
        lines.append(
            "- **Changed after the run started** (after data could be seen; not the registered design): "
            + "; ".join(changed)
        )
    return lines
