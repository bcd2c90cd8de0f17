"""The model store: names, not paths; a missing model names the ones there are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from churnkit.core.config import load_settings
from churnkit.core.errors import ConfigError, ExitCode, ModelError, UsageError
from churnkit.core.workspace import Workspace
from churnkit.model import store
from churnkit.model.card import BINARY, CARD_FILE, CardFeature, ModelCard
from churnkit.model.training import train


@pytest.mark.parametrize("name", ["default", "backtest", "v2.1", "churn_2026-06-30", "A" * 100])
def test_plain_names_are_model_names(name: str) -> None:
    assert store.check_name(name) == name
    assert store.model_dir(Workspace(Path("/ws")), name) == Path("/ws/models") / name


@pytest.mark.parametrize(
    "name", ["../x", "../../etc", "a/b", "/tmp/m", ".hidden", "..", "", "a b", "é", "A" * 101]
)
def test_paths_and_odd_names_are_usage_errors_naming_the_flag(name: str) -> None:
    with pytest.raises(UsageError) as caught:
        store.model_dir(Path("/ws/models"), name)
    assert caught.value.exit_code == ExitCode.USAGE
    assert caught.value.message.startswith(f"--model {name!r}: ")
    assert "letters, digits, '.', '_' and '-'" in caught.value.message


def test_a_bad_name_in_the_config_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"train\.model"):
        load_settings(None, env={"CHURNKIT_TRAIN__MODEL": "../elsewhere"})


def test_train_refuses_a_path_before_reading_any_event(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    class Untouchable:
        def __getattr__(self, name: str) -> object:
            raise AssertionError("the events were read")

    with pytest.raises(UsageError, match=r"--model '\.\./x'"):
        train(Untouchable(), settings=settings, workspace=Workspace(tmp_path), model_name="../x")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def _card(directory: Path, model_type: str = "lightgbm") -> None:
    card = ModelCard(
        model_type=model_type,
        mode="binary",
        classes=BINARY,
        features=(CardFeature(name="recency_days", type="numeric", description="d"),),
    )
    card.write(directory)


def test_a_missing_model_lists_the_models_there_are(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path)
    with pytest.raises(ModelError) as caught:
        store.load_model(workspace, "default")
    assert caught.value.message == f"no model 'default' in {workspace.models_dir}"
    assert caught.value.hint == "run `churnkit train` first"

    for name in ("weekly", "backtest"):
        _card(workspace.model_dir(name))
    (workspace.models_dir / "half-written").mkdir()  # no card: not a model
    for read in (store.load_model, store.read_card):
        with pytest.raises(ModelError) as caught:
            read(workspace, "nope")
        assert caught.value.message == (
            f"no model 'nope' in {workspace.models_dir}; models in {workspace.models_dir}: "
            "backtest, weekly"
        )
        assert "--model" in (caught.value.hint or "")
    assert store.available(workspace) == ["backtest", "weekly"]


def test_a_model_of_an_unknown_family_is_refused(tmp_path: Path) -> None:
    _card(tmp_path / "m", model_type="bgnbd")
    with pytest.raises(ModelError, match="'bgnbd' model, which this churnkit cannot read") as e:
        store.load_model(tmp_path, "m")
    assert "lightgbm" in e.value.message
    assert json.loads((tmp_path / "m" / CARD_FILE).read_text())["model_type"] == "bgnbd"
