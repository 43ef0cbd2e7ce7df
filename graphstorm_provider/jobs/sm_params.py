"""
``--sm-estimator-parameters``: the "k=v k=v" grammar of GraphStorm's SageMaker launch scripts and its mapping to API fields.

GraphStorm's SageMaker launch scripts forward these as keyword arguments to the SageMaker Python SDK 2
``Estimator`` (training jobs: train, infer, partition) or ``Processor`` (processing
jobs: gconstruct). We do not use the SDK (2.x does not install beside Airflow 3),
so the SDK argument names are mapped to CreateTrainingJob / CreateProcessingJob
fields here, with the SDK's names and meaning. The table is in ``sm_fields.py``.
"""

from __future__ import annotations

import ast
import copy
import difflib
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from graphstorm_provider.jobs.errors import JobSpecError
from graphstorm_provider.jobs.sm_fields import (
    CROSS_KIND,
    FIELDS,
    KIND_STEPS,
    NOT_APPLICABLE,
    PARAM_FLAG,
    SmField,
    check_combination,
)

if TYPE_CHECKING:
    from graphstorm_provider.jobs.request import JobKind


class SmParameterError(JobSpecError):
    """A malformed or unsupported ``--sm-estimator-parameters`` entry."""


def parse_sm_parameters(text: str | None) -> dict[str, Any]:
    """
    Parse ``"max_run=3600 subnets=['subnet-1','subnet-2']"`` into ``{"max_run": 3600, ...}``.

    Entries are separated by whitespace; each is ``name=value`` where ``name`` is a
    Python identifier and ``value`` a Python literal without spaces, evaluated with
    :func:`ast.literal_eval`, or JSON (``true``, ``null``). Anything else raises
    :class:`SmParameterError` (a ``ValueError``) whose message names the offending entry; it quotes
    the entry only if ``text`` sets no environment (whose values may be secrets).
    """
    if text is None:
        return {}
    if not isinstance(text, str):
        raise SmParameterError(f"{PARAM_FLAG} must be a string of name=value pairs, got {type(text).__name__}.")
    tokens = text.split()
    shown = not _sets_environment(text)
    _check_no_spaces(tokens, shown)
    params: dict[str, Any] = {}
    for index, token in enumerate(tokens):
        name, _, raw = token.partition("=")
        if not name.isidentifier() or not name.isascii():
            if shown:
                raise SmParameterError(f"{PARAM_FLAG}: {name!r} is not a valid parameter name (in {token!r}).")
            raise SmParameterError(
                f"{PARAM_FLAG}: entry {index + 1} has no valid parameter name before its '=' "
                f"(not quoted, as the parameters set environment variables)."
            )
        if name in params:
            raise SmParameterError(f"{PARAM_FLAG}: {name} is given twice.")
        params[name] = _literal(name, raw, shown)
    return params


# An environment entry anywhere in the text (environment=..., 'env': ...): its values may be secrets,
# so an error about the text quotes none of it (a value with a space or '=' spans entries).
_ENVIRONMENT_NAME = re.compile(r"\benv(?:ironment)?\b", re.I)


def _sets_environment(text: str) -> bool:
    return bool(_ENVIRONMENT_NAME.search(text))


def _check_no_spaces(tokens: list[str], shown: bool) -> None:
    """Refuse a token without '=' (or starting with '='): the tail of a value that contained a space."""
    for index, token in enumerate(tokens):
        if "=" in token and not token.startswith("="):
            continue
        if index == 0:
            what = repr(token) if shown else "its first entry"
            raise SmParameterError(f"{PARAM_FLAG}: {what} is not in name=value form.")
        previous = tokens[index - 1].partition("=")[0]
        before = f" before {token!r}" if shown else ""
        raise SmParameterError(
            f"{PARAM_FLAG}: the value of {previous} contains a space{before}, "
            f"but values must be written without spaces (e.g. subnets=['subnet-1','subnet-2'])."
        )


def _literal(name: str, raw: str, shown: bool = True) -> Any:
    if not raw:
        raise SmParameterError(f"{PARAM_FLAG}: {name} has an empty value (write {name}=<Python literal>).")
    try:
        return spelled_literal(raw)
    except ValueError as exc:
        if not shown:
            raise SmParameterError(
                f"{PARAM_FLAG}: the value of {name} is not a Python literal (not quoted, as it may hold secrets)."
            ) from exc
        hint = (
            f" (strings need quotes: {name}='{raw}')" if raw.replace("-", "_").replace(".", "_").isidentifier() else ""
        )
        raise SmParameterError(
            f"{PARAM_FLAG}: the value of {name}, {raw[:80]!r}, is not a Python literal{hint}."
        ) from exc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a literal")


def spelled_literal(text: str) -> Any:
    """
    Return the value ``text`` spells as a Python literal or, failing that, as JSON; else raise ``ValueError``.

    JSON for what templates render with ``| tojson`` (``true``, ``false``, ``null``, ``"..."``);
    not its ``NaN`` nor ``Infinity``.
    """
    try:
        return ast.literal_eval(text)
    # literal_eval raises ValueError, SyntaxError, TypeError (unhashable keys),
    # MemoryError / RecursionError (deep nesting): all mean "not a literal".
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # json.JSONDecodeError is a ValueError
        raise ValueError("neither a Python literal nor JSON") from exc


def normalise_sm_parameters(value: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the ``sm_estimator_parameters`` field as a dict: parsed from a string, or a dict copy."""
    if isinstance(value, str) and isinstance(spelled := rendered_literal(value), Mapping):
        value = spelled  # a rendered dict param: "{'max_run': 7200}"
    if value is None or isinstance(value, str):
        return parse_sm_parameters(value)
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str) or not key.isidentifier():
                raise SmParameterError(f"{PARAM_FLAG}: {key!r} is not a valid parameter name.")
        return copy.deepcopy(dict(value))
    raise SmParameterError(f"{PARAM_FLAG} must be a 'name=value ...' string or a dict, got {type(value).__name__}.")


def apply_sm_parameters(request: dict[str, Any], params: Mapping[str, Any], kind: JobKind) -> dict[str, Any]:
    """
    Return a copy of ``request`` with the SDK-2 ``params`` mapped to API fields.

    Raises :class:`SmParameterError` for unknown names (suggesting close matches),
    names of the other job kind (suggesting this kind's equivalent), names the
    launch flags own, and values of the wrong type.
    """
    result = copy.deepcopy(request)
    for name, value in params.items():
        field = _field_for(name, kind)
        trial = copy.deepcopy(result)
        try:
            field.apply(trial, value, kind)
        except JobSpecError:
            spelled = rendered_literal(value)
            if spelled is None:
                raise
            trial = copy.deepcopy(result)
            field.apply(trial, spelled, kind)  # a rendered template: the value the string spells
        result = trial
    check_combination(result, params, kind)
    return result


def rendered_literal(value: Any) -> Any:
    """
    Return what a string spells as a Python literal or JSON, if that is no string; else None.

    Airflow renders every templated value to a string (``"7200"``, ``"True"``, ``"['subnet-1']"``,
    a dict param rendered with ``| tojson``: ``'{"enable_network_isolation": false}'``).
    """
    if not isinstance(value, str):
        return None
    try:
        spelled = spelled_literal(value.strip())
    except ValueError:
        return None
    return None if isinstance(spelled, str) else spelled


def _field_for(name: str, kind: JobKind) -> SmField:
    field = FIELDS[kind].get(name)
    if field is not None:
        return field
    if name in NOT_APPLICABLE:
        raise SmParameterError(f"{PARAM_FLAG}: {name} cannot be set here: {NOT_APPLICABLE[name]}.")
    other: JobKind = "processing" if kind == "training" else "training"
    steps = KIND_STEPS[kind]
    if name in CROSS_KIND[kind]:
        raise SmParameterError(
            f"{PARAM_FLAG}: {name} is a {other}-job name; {kind} jobs ({steps}) use {CROSS_KIND[kind][name]} instead."
        )
    if name in FIELDS[other]:
        raise SmParameterError(
            f"{PARAM_FLAG}: {name} only applies to {other} jobs ({KIND_STEPS[other]}), "
            f"{kind} jobs ({steps}) have no equivalent."
        )
    # Typos of the other kind's names point at this kind's equivalent (max_runn -> max_runtime_in_seconds).
    candidates = [*FIELDS[kind], *CROSS_KIND[kind]]
    close = difflib.get_close_matches(name, candidates, n=2, cutoff=0.75)
    close = list(dict.fromkeys(CROSS_KIND[kind].get(match, match) for match in close))
    hint = f"did you mean {' or '.join(close)}?" if close else f"supported names: {', '.join(sorted(FIELDS[kind]))}."
    raise SmParameterError(f"{PARAM_FLAG}: unknown {kind}-job parameter {name}; {hint}")
