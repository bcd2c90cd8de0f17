"""The model store: model names, where models live, and which family reads a card.

Models are directories under ``WORKSPACE/models``, one per name. A name is a name,
never a path: letters, digits, ``.``, ``_`` and ``-``, not starting with a dot, so
``--model ../../x`` cannot write or read outside the workspace. Every command finds
its model through ``load_model`` (or ``read_card`` when the card is all it needs), so
a missing model is always reported the same way, with the models that do exist.

Each model family registers the ``model_type`` its cards carry; ``load_model`` reads
the card first and hands the directory to that family.
"""

from __future__ import annotations

from pathlib import Path

from churnkit.core import names
from churnkit.core.errors import ModelError
from churnkit.core.workspace import Workspace
from churnkit.model.base import Estimator
from churnkit.model.card import CARD_FILE, TRAIN_FIRST_HINT, ModelCard, TrainingRecord
from churnkit.model.lightgbm import MODEL_TYPE, ChurnModel

NAME_PATTERN = names.NAME_PATTERN

# model_type (as written in the card) → the family that reads it
FAMILIES: dict[str, type[Estimator]] = {MODEL_TYPE: ChurnModel}


def register(model_type: str, family: type[Estimator]) -> None:
    """Let ``load_model`` read cards whose ``model_type`` is ``model_type``."""
    FAMILIES[model_type] = family


def check_name(name: str, *, flag: str = "--model") -> str:
    """``name`` if it is a valid model name; otherwise a ``UsageError`` naming ``flag``."""
    return names.check_name(
        name, flag=flag, what="model", home="WORKSPACE/models", example="backtest"
    )


def models_dir(where: Workspace | Path) -> Path:
    """The directory holding the models: a workspace's ``models/``, or ``where`` itself."""
    return where.models_dir if isinstance(where, Workspace) else where


def model_dir(where: Workspace | Path, name: str) -> Path:
    """The directory of model ``name`` (checked: a name, not a path)."""
    return models_dir(where) / check_name(name)


def available(where: Workspace | Path) -> list[str]:
    """The names of the saved models, sorted."""
    root = models_dir(where)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / CARD_FILE).is_file())


def read_card(where: Workspace | Path, name: str) -> ModelCard:
    """The card of model ``name``; ``ModelError`` listing the models when it is absent."""
    return ModelCard.read(_existing(where, name))


def load_model(where: Workspace | Path, name: str) -> Estimator:
    """Model ``name``, read by the family its card names."""
    directory = _existing(where, name)
    card = ModelCard.read(directory)
    family = FAMILIES.get(card.model_type)
    if family is None:
        raise ModelError(
            f"model card {card.path} is for a {card.model_type!r} model, which this churnkit "
            f"cannot read (it knows {', '.join(sorted(FAMILIES))})",
            hint="upgrade churnkit, or retrain with `churnkit train`",
        )
    return family.load(directory, card)


def save_model(
    model: Estimator, where: Workspace | Path, name: str, training: TrainingRecord | None = None
) -> ModelCard:
    """Save ``model`` as ``name`` (replacing any model of that name); its card."""
    return model.save(model_dir(where, name), training)


def _existing(where: Workspace | Path, name: str) -> Path:
    directory = model_dir(where, name)
    if (directory / CARD_FILE).is_file():
        return directory
    root = models_dir(where)
    found = available(where)
    known = f"; models in {root}: {', '.join(found)}" if found else ""
    raise ModelError(
        f"no model {name!r} in {root}{known}",
        hint=TRAIN_FIRST_HINT + (" or pick one with --model" if found else ""),
    )
