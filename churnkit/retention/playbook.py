"""The retention playbook: which action fits which at-risk customer, as configured.

:func:`load_playbook` reads a playbook file (``configs/actions.yaml``; which one, see
:func:`playbook_path`): an ordered list of rules, each a set of conditions (``when``)
and an ``action`` with a channel, a cost per customer and an assumed success rate,
plus a ``fallback`` action for everyone no rule fits. Every mistake is a
:class:`ConfigError` naming the file, the rule and the key, and so is a rule whose
drivers contradict its churn kind (see ``driver_families``).

What follows a loaded playbook lives beside it: ``matching`` gives each customer an
action, ``control`` holds out a control group, ``budget`` chooses whom to act on and
``plan`` totals the result per action.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from churnkit.core.errors import ConfigError
from churnkit.core.schema import ChurnType
from churnkit.data import CONFIGS_DIR, PLAYBOOK, packaged
from churnkit.retention.driver_families import (
    FAMILY_NAMES,
    PAYMENT_FAMILIES,
    glob_regex,
    has_wildcard,
    term_families,
)

# The user's own playbook, looked for in the working directory.
DEFAULT_PLAYBOOK = CONFIGS_DIR / PLAYBOOK

Channel = Literal[
    "email", "sms", "phone", "in_app", "account_manager", "billing_system", "self_service", "none"
]
Lever = Literal["procedural", "relational", "financial", "service_recovery", "payment_recovery"]
Strategy = Literal["build", "protect", "reshape", "enhance", "harvest", "end", "win_back"]
CustomerType = Literal["loyal", "discount_driven", "need_based", "impulse", "wanderer"]
ValueTier = Literal["high", "medium", "low"]
LifecycleStage = Literal["new", "converting", "retained", "loyal", "at_risk", "lapsed"]

_DRIVER_PATTERN = re.compile(r"[A-Za-z0-9_*?]+")


def _as_list(value: object) -> object:
    """Let a single value stand for a one-element list (``churn_type: involuntary``)."""
    return [value] if isinstance(value, str | int | float) else value


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


Name = Annotated[str, BeforeValidator(_strip), Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Action(_Strict):
    """What to do for a customer, through which channel, at what assumed cost and effect."""

    name: Name
    description: Name
    channel: Channel
    unit_cost: float = Field(ge=0, allow_inf_nan=False)
    success_rate: float = Field(ge=0, le=1)
    lever: Lever | None = None
    strategy: Strategy | None = None


class Conditions(_Strict):
    """All given conditions must hold; a list condition holds when the customer's value
    is one of the listed ones (a missing value, e.g. no segment yet, never matches)."""

    churn_type: Annotated[
        list[ChurnType] | None, BeforeValidator(_as_list), Field(min_length=1)
    ] = None
    drivers_any: Annotated[list[str] | None, BeforeValidator(_as_list), Field(min_length=1)] = None
    leading_driver_family: Annotated[
        list[str] | None, BeforeValidator(_as_list), Field(min_length=1)
    ] = None
    segment: Annotated[list[Name] | None, BeforeValidator(_as_list), Field(min_length=1)] = None
    customer_type: Annotated[
        list[CustomerType] | None, BeforeValidator(_as_list), Field(min_length=1)
    ] = None
    strategy: Annotated[list[Strategy] | None, BeforeValidator(_as_list), Field(min_length=1)] = (
        None
    )
    value_tier: Annotated[
        list[ValueTier] | None, BeforeValidator(_as_list), Field(min_length=1)
    ] = None
    risk_tier: Annotated[list[Name] | None, BeforeValidator(_as_list), Field(min_length=1)] = None
    lifecycle_stage: Annotated[
        list[LifecycleStage] | None, BeforeValidator(_as_list), Field(min_length=1)
    ] = None
    min_value: float | None = Field(None, ge=0, allow_inf_nan=False)
    min_p_churn: float | None = Field(None, ge=0, le=1)

    @field_validator("drivers_any")
    @classmethod
    def _feature_names(cls, value: list[str] | None) -> list[str] | None:
        for term in value or []:
            if not _DRIVER_PATTERN.fullmatch(term):
                raise ValueError(
                    f"{term!r} is not a feature name or a glob pattern such as 'usage_*'"
                )
        return value

    @field_validator("leading_driver_family")
    @classmethod
    def _family_names(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            if name not in FAMILY_NAMES:
                close = difflib.get_close_matches(name, FAMILY_NAMES, n=1)
                suggestion = f" (did you mean '{close[0]}'?)" if close else ""
                raise ValueError(
                    f"{name!r} is not a feature family{suggestion}; "
                    f"families: {', '.join(FAMILY_NAMES)}"
                )
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Conditions:
        if not self.model_fields_set:
            raise ValueError(
                "a rule needs at least one condition; "
                "put the action for everyone else under `fallback`"
            )
        return self


class Rule(_Strict):
    name: Name
    when: Conditions
    action: Action


class Playbook(_Strict):
    """Rules evaluated in order (the first whose conditions all hold wins), then
    ``fallback`` for every customer no rule fits."""

    rules: tuple[Rule, ...] = ()
    fallback: Action

    def features(self) -> list[str]:
        """Every feature name or glob pattern the rules refer to."""
        return sorted({t for r in self.rules for t in r.when.drivers_any or []})


def playbook_path(flag: Path | None = None, configured: Path | None = None) -> Path:
    """The playbook to use: ``--playbook`` (``flag``), else ``predict.playbook``
    (``configured``; it must exist), else ``./configs/actions.yaml``, else the one
    shipped with churnkit."""
    if flag is not None:
        return flag
    if configured is not None:
        if not configured.is_file():
            raise ConfigError(
                f"setting `predict.playbook` names {configured}, which does not exist",
                hint="point it at a playbook file, or remove the setting to use "
                "./configs/actions.yaml or the shipped default",
            )
        return configured
    return DEFAULT_PLAYBOOK if DEFAULT_PLAYBOOK.is_file() else packaged(PLAYBOOK)


def load_playbook(path: Path, *, known_features: Collection[str]) -> Playbook:
    """Read and validate a playbook file.

    ``known_features`` lists the feature names rules may refer to in ``drivers_any``;
    entries may themselves be glob patterns (``usage_*_trend``) for feature families
    whose exact names depend on the data. Any mistake raises :class:`ConfigError` with
    one line naming the file and the rule.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read playbook {path}: {exc.strerror}",
            hint="pass an existing file, or leave --playbook out to use the default",
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}:{where} {problem}") from None
    return parse_playbook(data, known_features=known_features, source=str(path))


def parse_playbook(
    data: object, *, known_features: Collection[str], source: str = "playbook"
) -> Playbook:
    """Validate an already-parsed playbook (a mapping with ``rules`` and ``fallback``)."""
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{source}: the top level must be a mapping with `rules` (a list) and `fallback`"
        )
    try:
        playbook = Playbook.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_explain(exc, data)}") from None
    _check_names(playbook, source)
    _check_features(playbook, known_features, source)
    _check_fit(playbook, known_features, source)
    return playbook


def _check_names(playbook: Playbook, source: str) -> None:
    seen_rules: dict[str, int] = {}
    actions: dict[str, tuple[str, Action]] = {}
    for i, rule in enumerate(playbook.rules, start=1):
        if rule.name in seen_rules:
            raise ConfigError(
                f"{source}: rule '{rule.name}': duplicate rule name "
                f"(rule #{seen_rules[rule.name]} has it too); give each rule its own name"
            )
        seen_rules[rule.name] = i
    owners = [(f"rule '{r.name}'", r.action) for r in playbook.rules]
    for owner, action in [*owners, ("fallback", playbook.fallback)]:
        first = actions.setdefault(action.name, (owner, action))
        if first[1] != action:
            raise ConfigError(
                f"{source}: {owner}: action '{action.name}' differs from the action of the "
                f"same name in {first[0]}; rename one or make them identical"
            )


def _check_features(playbook: Playbook, known: Collection[str], source: str) -> None:
    known_list = sorted(set(known))
    for rule in playbook.rules:
        for term in rule.when.drivers_any or []:
            if _is_known(term, known_list):
                continue
            kind = "feature pattern" if has_wildcard(term) else "feature"
            close = difflib.get_close_matches(term, known_list, n=1)
            suggestion = f" (did you mean '{close[0]}'?)" if close else ""
            listed = ", ".join(known_list) if known_list else "(none)"
            raise ConfigError(
                f"{source}: rule '{rule.name}': unknown {kind} '{term}'{suggestion}; "
                f"known: {listed}"
            )


def _check_fit(playbook: Playbook, known: Collection[str], source: str) -> None:
    """A rule's drivers must fit its churn kind: a rule for involuntary churners only
    names payment drivers, a rule for voluntary churners only names none."""
    for rule in playbook.rules:
        kinds = {k.value for k in rule.when.churn_type or []}
        if not kinds:
            continue
        only_involuntary = kinds == {ChurnType.INVOLUNTARY.value}
        only_voluntary = not kinds & {ChurnType.INVOLUNTARY.value, ChurnType.CHURNED.value}
        for term, families in _driver_families(rule, known):
            payment = sorted(families & PAYMENT_FAMILIES)
            other = sorted(families - PAYMENT_FAMILIES)
            if only_involuntary and other and not payment:
                raise ConfigError(
                    f"{source}: rule '{rule.name}': driver '{term}' ({', '.join(other)}) "
                    "does not fit churn_type [involuntary]: an involuntary churner's "
                    "reason is a failed payment, answered with a payment action"
                )
            if only_voluntary and payment and not other:
                raise ConfigError(
                    f"{source}: rule '{rule.name}': driver '{term}' ({', '.join(payment)}) "
                    f"is a payment signal and does not fit churn_type "
                    f"[{', '.join(sorted(kinds))}]; add involuntary to churn_type, or "
                    "write a rule on leading_driver_family for it"
                )


def _driver_families(rule: Rule, known: Collection[str]) -> list[tuple[str, set[str]]]:
    """Each driver term of a rule with the families it can match."""
    terms = [(t, term_families(t, known)) for t in rule.when.drivers_any or []]
    terms += [(f, {f}) for f in rule.when.leading_driver_family or []]
    return [(t, f) for t, f in terms if f]


def _is_known(term: str, known: Sequence[str]) -> bool:
    """A term is known when it names a known feature, when it is a glob matching one,
    or when a known glob pattern (a feature family) matches it."""
    term_re = re.compile(glob_regex(term))
    return any(
        term == k or term_re.match(k) or (has_wildcard(k) and re.match(glob_regex(k), term))
        for k in known
    )


_MODELS: dict[str, type[BaseModel]] = {
    "": Playbook,
    "rule": Rule,
    "rule.when": Conditions,
    "rule.action": Action,
    "fallback": Action,
}


def _explain(exc: ValidationError, data: Mapping[Any, Any]) -> str:
    """One line naming the rule, the key, what is allowed and what was found."""
    errors = exc.errors()
    err = errors[0]
    loc = list(err["loc"])
    where = ""
    scope = ""
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        where = f"rule {_rule_label(data, loc[1])}: "
        scope = "rule"
        loc = loc[2:]
    elif len(loc) >= 2 and loc[0] == "fallback":
        where = "fallback: "
        scope = "fallback"
        loc = loc[1:]
    names = [str(p) for p in loc if not isinstance(p, int)]
    key = ".".join(names)
    kind = err["type"]
    got = err.get("input")
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    if kind == "extra_forbidden":
        parent = ".".join(p for p in [scope, *names[:-1]] if p)
        model = _MODELS.get(parent)
        allowed = f"; allowed here: {', '.join(model.model_fields)}" if model else ""
        return f"{where}unknown key `{key}`{allowed}{more}"
    if kind == "missing":
        return f"{where}missing key `{key}`{more}"
    ctx = err.get("ctx") or {}
    label = f"`{key}`" if key else "this entry"
    if "expected" in ctx:
        return f"{where}{label} must be one of {ctx['expected']}; got {got!r}{more}"
    if kind == "value_error":
        message = str(ctx.get("error", err["msg"]))
        return f"{where}{label}: {message}{more}" if key else f"{where}{message}{more}"
    text = err["msg"].lower().replace("input should be ", "")
    if kind.startswith(("greater", "less")):
        text = f"a value {text}"
    return f"{where}{label} must be {text}; got {got!r}{more}"


def _rule_label(data: Mapping[Any, Any], index: int) -> str:
    rules = data.get("rules")
    if isinstance(rules, list) and index < len(rules):
        rule = rules[index]
        if isinstance(rule, Mapping) and isinstance(rule.get("name"), str):
            return f"'{rule['name']}'"
    return f"#{index + 1}"
