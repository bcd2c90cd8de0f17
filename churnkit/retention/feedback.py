"""Feeding a measured campaign back into the playbook.

When an action's observed success rate (the share of would-be churners it kept, with
its 95% interval) excludes the rate the playbook assumed, ``measure`` writes a
suggested playbook beside the campaign: the playbook as it was when the plan was
saved, with the observed rate in place of the assumed one and a comment saying why.
It is a new file, never written over an existing one, and never the playbook in use:
a person decides whether to adopt it.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from churnkit.core.workspace import atomic_path
from churnkit.retention.outcome import HIGHER, LOWER, ActionResult, CampaignResult

SUGGESTED_PREFIX = "playbook-suggested-"


def confident_changes(result: CampaignResult) -> list[ActionResult]:
    """The actions whose observed success rate excludes the assumed one."""
    return [a for a in result.actions if a.verdict in (LOWER, HIGHER)]


def suggested_playbook(
    playbook: dict[str, Any], result: CampaignResult
) -> tuple[str, list[ActionResult]] | None:
    """The suggested playbook's text, and the actions it changes; ``None`` when the
    data is consistent with every assumption (or says nothing)."""
    changes = confident_changes(result)
    if not changes:
        return None
    rates = {a.action: round(min(max(a.observed_success_rate, 0.0), 1.0), 3) for a in changes}
    document = copy.deepcopy(playbook)
    for action in _actions(document):
        if action.get("name") in rates:
            action["success_rate"] = rates[action["name"]]
    header = [
        "# Suggested playbook update from a measured campaign; review before adopting.",
        f"# Campaign {_clean(result.campaign)}: plan as of {result.as_of.isoformat()}, "
        f"measured over {result.days} days to {result.window_end.isoformat()}"
        f"{'' if result.window_complete else ' (window incomplete)'}.",
        "# Observed success rate = share of would-be churners kept "
        "(uplift / control churn rate), with its 95% interval:",
    ]
    for a in changes:
        header.append(
            f"#   {_clean(a.action)}: assumed {a.assumed_success_rate:.2f}, observed "
            f"{a.observed_success_rate:.2f} (95% interval {a.success_low:.2f} to "
            f"{a.success_high:.2f}; {a.comparison.treated} treated, "
            f"{a.comparison.control} control) -> success_rate {rates[a.action]}"
        )
    body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=88)
    return "\n".join(header) + "\n" + body, changes


def write_suggestion(folder: Path, day: str, text: str) -> Path:
    """Write ``playbook-suggested-DAY.yaml`` in ``folder``, or ``-2``, ``-3``... when
    that name is taken: an existing file is never replaced. The same suggestion made
    again (measuring twice on the same data) is not written twice."""
    for path in _candidates(folder, day):
        if path.exists() and _same(path, text):
            return path
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        # The name is reserved; the content still lands atomically.
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
        return path
    raise FileExistsError(folder)  # pragma: no cover - unbounded candidates


def _same(path: Path, text: str) -> bool:
    try:
        return path.read_text(encoding="utf-8") == text
    except (OSError, UnicodeDecodeError):
        return False


def _candidates(folder: Path, day: str) -> Iterator[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    yield folder / f"{SUGGESTED_PREFIX}{day}.yaml"
    n = 2
    while True:
        yield folder / f"{SUGGESTED_PREFIX}{day}-{n}.yaml"
        n += 1


def _actions(document: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for rule in document.get("rules") or []:
        if isinstance(rule, dict) and isinstance(rule.get("action"), dict):
            yield rule["action"]
    if isinstance(document.get("fallback"), dict):
        yield document["fallback"]


def _clean(text: str) -> str:
    """One line of a YAML comment: no line breaks or control characters."""
    return "".join(ch if ch.isprintable() else " " for ch in text)
