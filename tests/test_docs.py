"""The docs stay in step with the code: commands, settings and exit codes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from churnkit.cli import app
from churnkit.core.config import Settings, load_settings
from churnkit.core.errors import ExitCode

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CONFIG = ROOT / "configs" / "churnkit.yaml"


def leaf_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= leaf_keys(annotation, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


def yaml_keys(
    data: dict[str, Any], prefix: str = "", model: type[BaseModel] = Settings
) -> set[str]:
    keys: set[str] = set()
    for name, value in data.items():
        field = model.model_fields.get(name)
        annotation = field.annotation if field else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= yaml_keys(value or {}, f"{prefix}{name}.", annotation)
        else:
            keys.add(f"{prefix}{name}")
    return keys


def test_every_command_is_in_the_readme():
    names = [c.name for c in app.registered_commands]
    assert names
    for name in names:
        assert f"churnkit {name}" in README, name


def test_every_exit_code_is_in_the_readme_table():
    for code in ExitCode:
        assert re.search(rf"^\| {int(code)} \|", README, re.MULTILINE), code


def test_config_file_lists_every_setting_and_nothing_else():
    data = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    assert yaml_keys(data) == leaf_keys(Settings)


def test_config_file_holds_the_defaults():
    assert load_settings(CONFIG, env={}) == load_settings(None, env={})


def test_every_setting_is_commented():
    lines = CONFIG.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)([a-z_]+):\s*\S", line)  # a key with a value
        if match:
            previous = lines[i - 1].strip() if i else ""
            assert previous.startswith("#") or "#" in line, f"uncommented key: {line.strip()}"


def test_the_docs_stand_alone():
    """Everything the code and docs cite is in the repository: the contract and the
    domain notes live in docs/, in the project's own words."""
    cited = re.compile(r"\b(DESIGN|DOMAIN|STYLE)\.md\b")
    texts = [ROOT / "README.md", ROOT / "ARCHITECTURE.md", *(ROOT / "docs").glob("*.md")]
    texts += [*(ROOT / "churnkit").rglob("*.py"), *(ROOT / "configs").glob("*.yaml")]
    offenders = [str(p.relative_to(ROOT)) for p in texts if cited.search(p.read_text("utf-8"))]
    assert offenders == []
    for name in ("contract.md", "domain.md"):
        assert (ROOT / "docs" / name).is_file()
    links = re.findall(r"\]\(((?:docs/)?[a-z_/]+\.md)\)", README)
    assert all((ROOT / link).is_file() for link in links), links
