"""config: flag > env > file > default, and every mistake is a ConfigError naming its key."""

from __future__ import annotations

import types
from datetime import date
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from churnkit.core.config import LabelSettings, Settings, TrainSettings, load_settings
from churnkit.core.errors import ConfigError, ExitCode


def write_config(directory: Path, data: Any, name: str = "churnkit.yaml") -> Path:
    path = directory / name
    text = data if isinstance(data, str) else yaml.safe_dump(data)
    path.write_text(text, encoding="utf-8")
    return path


def config_error(*args: Any, **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_settings(*args, **kwargs)
    assert info.value.exit_code == ExitCode.CONFIG
    return info.value


# --- precedence ------------------------------------------------------------------------


def test_defaults_without_file_env_or_flags():
    settings = load_settings(None, env={})
    assert settings == Settings()
    assert settings.labels.horizon == LabelSettings().horizon
    assert settings.workspace == Path(".churnkit")


def test_flag_beats_env_beats_file_beats_default(tmp_path):
    path = write_config(tmp_path, {"labels": {"horizon": 30}, "train": {"seed": 1}})
    env = {"CHURNKIT_LABELS__HORIZON": "60", "CHURNKIT_INGEST__DATE_ORDER": "dmy"}
    flags = {"labels": {"horizon": 120}}

    settings = load_settings(path, env=env, overrides=flags)

    assert settings.labels.horizon == 120  # flag
    assert settings.ingest.date_order == "dmy"  # env
    assert settings.train.seed == 1  # file
    assert settings.report.top == Settings().report.top  # default
    assert load_settings(path, env=env).labels.horizon == 60
    assert load_settings(path, env={}).labels.horizon == 30


def test_workspace_from_env_and_flag(tmp_path):
    path = write_config(tmp_path, {"workspace": "from-file"})
    env = {"CHURNKIT_WORKSPACE": "from-env"}
    assert load_settings(path, env={}).workspace == Path("from-file")
    assert load_settings(path, env=env).workspace == Path("from-env")
    flag = {"workspace": "from-flag"}
    assert load_settings(path, env=env, overrides=flag).workspace == Path("from-flag")


def test_sections_merge_key_by_key(tmp_path):
    # The env sets one label key; the file's other label keys survive.
    path = write_config(tmp_path, {"labels": {"grace_period": 7, "horizon": 30}})
    settings = load_settings(path, env={"CHURNKIT_LABELS__HORIZON": "60"})
    assert settings.labels.horizon == 60
    assert settings.labels.grace_period == 7


def test_deeply_nested_env_variable():
    env = {"CHURNKIT_TRAIN__LIGHTGBM__NUM_LEAVES": "15"}
    settings = load_settings(None, env=env)
    assert settings.train.lightgbm.num_leaves == 15
    assert settings.train.lightgbm.learning_rate == TrainSettings().lightgbm.learning_rate


def test_env_values_are_typed_like_yaml():
    env = {
        "CHURNKIT_LABELS__HORIZON": "60",
        "CHURNKIT_FEATURES__WINDOWS": "[30, 90]",
        "CHURNKIT_QUALITY_GATES__AUC": "0.65",
        "CHURNKIT_INGEST__DATE_FORMATS": '["%d %b %Y"]',
    }
    settings = load_settings(None, env=env)
    assert settings.labels.horizon == 60
    assert settings.features.windows == [30, 90]
    assert settings.quality_gates.auc == 0.65
    assert settings.ingest.date_formats == ["%d %b %Y"]


def test_unrelated_env_variables_are_ignored():
    env = {"HOME": "/root", "CHURNKIT_CONFIG": "elsewhere.yaml", "LABELS__HORIZON": "x"}
    assert load_settings(None, env=env) == Settings()


KEYS: dict[str, st.SearchStrategy[Any]] = {
    "labels.horizon": st.integers(min_value=1, max_value=10_000),
    "train.seed": st.integers(min_value=0, max_value=2**31),
    "report.top": st.integers(min_value=1, max_value=500),
    "ingest.date_order": st.sampled_from(["auto", "dmy", "mdy"]),
    "quality_gates.auc": st.sampled_from([0.5, 0.6, 0.75, 0.9]),
}


def nested(dotted: str, value: Any) -> dict[str, Any]:
    out: Any = value
    for part in reversed(dotted.split(".")):
        out = {part: out}
    return out


def read(settings: Settings, dotted: str) -> Any:
    node: Any = settings
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


@st.composite
def assignments(draw: st.DrawFn) -> tuple[str, Any, Any, Any]:
    key = draw(st.sampled_from(sorted(KEYS)))
    values = st.none() | KEYS[key]
    return key, draw(values), draw(values), draw(values)


@given(assignment=assignments())
def test_precedence_holds_for_any_assignment(tmp_path_factory, assignment):
    key, flag, env_value, file_value = assignment
    path = None
    if file_value is not None:
        path = write_config(tmp_path_factory.mktemp("cfg"), nested(key, file_value))
    env = {}
    if env_value is not None:
        env["CHURNKIT_" + key.upper().replace(".", "__")] = str(env_value)
    overrides = nested(key, flag) if flag is not None else None

    settings = load_settings(path, env=env, overrides=overrides)

    candidates = [flag, env_value, file_value, read(Settings(), key)]
    assert read(settings, key) == next(v for v in candidates if v is not None)


# --- errors ----------------------------------------------------------------------------


def test_unknown_key_in_file_names_the_key_the_file_and_the_allowed_keys(tmp_path):
    path = write_config(tmp_path, {"labels": {"horizn": 60}})
    err = config_error(path, env={})
    assert "labels.horizn" in err.message
    assert str(path) in err.message
    for allowed in ("horizon", "active_window", "grace_period"):
        assert allowed in err.message


def test_unknown_top_level_key_lists_the_sections(tmp_path):
    path = write_config(tmp_path, {"lables": {"horizon": 60}})
    err = config_error(path, env={})
    assert "lables" in err.message
    assert "labels" in err.message and "workspace" in err.message


def test_unknown_key_in_env_names_the_dotted_key():
    err = config_error(None, env={"CHURNKIT_LABELS__HORIZN": "60"})
    assert "labels.horizn" in err.message
    assert "horizon" in err.message


def test_bad_choice_names_the_key_and_the_allowed_values(tmp_path):
    path = write_config(tmp_path, {"ingest": {"date_order": "ymd"}})
    err = config_error(path, env={})
    assert "ingest.date_order" in err.message
    for allowed in ("auto", "dmy", "mdy"):
        assert allowed in err.message
    assert "ymd" in err.message


def test_out_of_range_value_names_the_key_and_the_bound():
    err = config_error(None, env={"CHURNKIT_LABELS__HORIZON": "0"})
    assert "labels.horizon" in err.message
    assert "greater than or equal to 1" in err.message


def test_wrongly_typed_env_value_names_the_key_and_the_value():
    err = config_error(None, env={"CHURNKIT_LABELS__HORIZON": "ninety"})
    assert "labels.horizon" in err.message
    assert "ninety" in err.message


def test_mapping_to_an_unknown_canonical_column(tmp_path):
    path = write_config(tmp_path, {"ingest": {"mapping": {"custmer_id": "Client"}}})
    err = config_error(path, env={})
    assert "ingest.mapping.custmer_id" in err.message
    assert "customer_id" in err.message


def test_status_map_to_an_unknown_kind():
    err = config_error(None, env={}, overrides={"ingest": {"status_map": {"pending": "maybe"}}})
    assert "ingest.status_map.pending" in err.message
    assert "payment_failed" in err.message


def test_unknown_time_zone_is_a_config_error():
    err = config_error(None, env={"CHURNKIT_INGEST__TIMEZONE": "Mars/Olympus"})
    assert "ingest.timezone" in err.message


def test_invalid_yaml_names_file_line_and_column(tmp_path):
    path = write_config(tmp_path, "labels:\n  horizon: 60\n bad: [1\n")
    err = config_error(path, env={})
    assert str(path) in err.message
    assert "line 3" in err.message
    assert "column" in err.message


@pytest.mark.parametrize("text", ["- labels\n- train\n", "just words\n", "42\n"])
def test_top_level_must_be_a_mapping(tmp_path, text):
    err = config_error(write_config(tmp_path, text), env={})
    assert "mapping" in err.message


def test_empty_config_file_means_defaults(tmp_path):
    assert load_settings(write_config(tmp_path, ""), env={}) == Settings()


def test_missing_config_file(tmp_path):
    path = tmp_path / "nope.yaml"
    err = config_error(path, env={})
    assert str(path) in err.message
    assert "--config" in err.hint


# --- contract: every leaf setting rejects a wrongly typed value by name ----------------


def _leaves(model: type[BaseModel], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out += _leaves(annotation, f"{prefix}{name}.")
        else:
            out.append((f"{prefix}{name}", annotation))
    return out


def _without_none(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _bad_values(annotation: Any) -> list[Any]:
    """Values no user could mean for a field of this type."""
    base = _without_none(annotation)
    bad: list[Any] = [{"nested": {"mapping": 1}}]
    if get_origin(base) is Literal:
        bad.append("not-a-choice")
    elif base in (int, float):
        bad.append("not-a-number")
    elif base is date:
        bad.append("not-a-date")
    elif get_origin(base) is list:
        bad.append("not-a-list")
    elif get_origin(base) is dict:
        bad.append("not-a-mapping")
    return bad


LEAVES = _leaves(Settings)
CASES = [
    pytest.param(key, value, id=f"{key}={value!r}")
    for key, annotation in LEAVES
    for value in _bad_values(annotation)
]


def test_the_contract_walks_every_section():
    keys = {key for key, _ in LEAVES}
    assert {"workspace", "labels.horizon", "train.lightgbm.num_leaves", "ingest.date_order"} <= keys
    assert all(not isinstance(a, type) or not issubclass(a, BaseModel) for _, a in LEAVES)


@pytest.mark.parametrize(("key", "value"), CASES)
def test_every_setting_rejects_a_wrongly_typed_value_by_name(key, value):
    err = config_error(None, env={}, overrides=nested(key, value))
    assert f"`{key}" in err.message


@pytest.mark.parametrize(
    ("key", "annotation"),
    [(k, a) for k, a in LEAVES if get_origin(_without_none(a)) is Literal],
)
def test_every_choice_setting_lists_its_choices(key, annotation):
    err = config_error(None, env={}, overrides=nested(key, "not-a-choice"))
    for choice in get_args(_without_none(annotation)):
        assert repr(choice) in err.message
    assert "not-a-choice" in err.message


# --- fingerprint -----------------------------------------------------------------------


def test_fingerprint_is_stable_for_equal_settings(tmp_path):
    from_file = load_settings(write_config(tmp_path, {"labels": {"horizon": 60}}), env={})
    from_env = load_settings(None, env={"CHURNKIT_LABELS__HORIZON": "60"})
    assert from_file.fingerprint() == from_env.fingerprint()
    assert Settings().fingerprint() == Settings().fingerprint()


@pytest.mark.parametrize(
    "overrides",
    [
        {"labels": {"horizon": 60}},
        {"train": {"lightgbm": {"num_leaves": 15}}},
        {"ingest": {"status_map": {"pending": "other"}}},
        {"features": {"windows": [30, 90]}},
    ],
)
def test_fingerprint_changes_with_any_setting(overrides):
    changed = load_settings(None, env={}, overrides=overrides)
    assert changed.fingerprint() != Settings().fingerprint()
