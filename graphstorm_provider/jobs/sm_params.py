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
    :func:`ast.literal_eval`. Anything else raises :class:`SmParameterError` (a
    ``ValueError``) whose message names the offending entry.
    """
    if text is None:
        return {}
    if not isinstance(text, str):
        raise SmParameterError(f"{PARAM_FLAG} must be a string of name=value pairs, got {type(text).__name__}.")
    tokens = text.split()
    _check_no_spaces(tokens)
    params: dict[str, Any] = {}
    for token in tokens:
        name, _, raw = token.partition("=")
        if not name.isidentifier() or not name.isascii():
            raise SmParameterError(f"{PARAM_FLAG}: {name!r} is not a valid parameter name (in {token!r}).")
        if name in params:
            raise SmParameterError(f"{PARAM_FLAG}: {name} is given twice.")
        params[name] = _literal(name, raw)
    return params


def _check_no_spaces(tokens: list[str]) -> None:
    """Refuse a token without '=' (or starting with '='): the tail of a value that contained a space."""
    for index, token in enumerate(tokens):
        if "=" in token and not token.startswith("="):
            continue
        if index == 0:
            raise SmParameterError(f"{PARAM_FLAG}: {token!r} is not in name=value form.")
        previous = tokens[index - 1].partition("=")[0]
        raise SmParameterError(
            f"{PARAM_FLAG}: the value of {previous} contains a space before {token!r}, "
            f"but values must be written without spaces (e.g. subnets=['subnet-1','subnet-2'])."
        )


def _literal(name: str, raw: str) -> Any:
    if not raw:
        raise SmParameterError(f"{PARAM_FLAG}: {name} has an empty value (write {name}=<Python literal>).")
    try:
        return ast.literal_eval(raw)
    # literal_eval raises ValueError, SyntaxError, TypeError (unhashable keys),
    # MemoryError / RecursionError (deep nesting): all mean "not a literal".
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        hint = (
            f" (strings need quotes: {name}='{raw}')" if raw.replace("-", "_").replace(".", "_").isidentifier() else ""
        )
        raise SmParameterError(
            f"{PARAM_FLAG}: the value of {name}, {raw[:80]!r}, is not a Python literal{hint}."
        ) from exc


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
    Return what a string spells as a Python literal, if that is no string; else None.

    Airflow renders every templated value to a string (``"7200"``, ``"True"``, ``"['subnet-1']"``).
    """
    if not isinstance(value, str):
        return None
    try:
        spelled = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
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
