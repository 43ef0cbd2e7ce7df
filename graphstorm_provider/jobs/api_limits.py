r"""
SageMaker's own limits on a rendered request, read from botocore's service model, checked before launch.

botocore's ``ParamValidator`` (what boto3 runs before sending) checks types, required members and
minimums only. SageMaker also refuses, with a ValidationException at launch, a value over a
``max`` (integers; lengths of strings, lists and maps), one that does not match a ``pattern``, or
one outside an ``enum``. :func:`check_request` walks a rendered request against the
CreateTrainingJob / CreateProcessingJob input shape and raises :class:`JobSpecError` for the first
value SageMaker would refuse, naming the parameter it came from (:func:`describe`).

* **When**: once per spec, at construction (``jobs/common.py``): task start or CLI parse, never
  at DAG parse. The model is read lazily, once per process (:func:`service_shapes`), straight from
  botocore's data file, without importing botocore (``gs-sagemaker --dry-run`` imports no AWS SDK).
* **Local requests** (``instance_type="local"``) are not checked: they never reach SageMaker, and
  they hold ``local`` as instance type and may hold ``file://`` URIs and any role, which the
  model's enum and patterns refuse.
* **Instance types** are an enum that grows with every new instance family: a type newer than the
  installed botocore is logged as a warning, not refused (:data:`OPEN_ENUMS`).
* **Patterns** are Java regular expressions that SageMaker applies to the whole value
  (``Matcher.matches``): :func:`translate_pattern` turns them into Python ones, compiled with
  ``re.ASCII`` (Java's ``\d``, ``\w``, ``\s`` are ASCII), and :func:`compiled_pattern` caches them.
  A construct it cannot translate is logged (once per pattern) and that pattern alone goes
  unchecked; tests/test_sagemaker_api_limits.py proves every pattern our requests can reach translates.
* **Lengths** are counted in code points (Java counts UTF-16 units: a character outside the BMP
  counts 2 there), so a rare value SageMaker refuses may pass, never the other way round.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphstorm_provider.aws_env import looks_secret
from graphstorm_provider.jobs.errors import JobSpecError, flag
from graphstorm_provider.jobs.request import LOCAL_INSTANCE_TYPE, JobKind
from graphstorm_provider.jobs.sm_fields import FIELDS, PARAM_FLAG
from graphstorm_provider.jobs.validation import MAX_QUOTED_CHARS, quoted

logger = logging.getLogger(__name__)

PathItem = str | int  # a request key, or a list index

OPERATIONS: dict[JobKind, str] = {"training": "CreateTrainingJob", "processing": "CreateProcessingJob"}
_SERVICE = "sagemaker"
_MODEL_FILES = ("service-2.json", "service-2.json.gz")  # botocore's loader tries them in this order

# Enums that grow with every AWS release: a value the installed botocore does not list may be new.
OPEN_ENUMS = frozenset({"TrainingInstanceType", "ProcessingInstanceType"})

# Plain words for the patterns users meet most (shape name -> what the pattern allows).
PATTERN_HINTS: dict[str, str] = {
    "TagKey": "letters, digits, spaces and _.:/=+-@",
    "TagValue": "letters, digits, spaces and _.:/=+-@",
    "SubnetId": "letters, digits and hyphens",
    "SecurityGroupId": "letters, digits and hyphens",
    "KmsKeyId": "letters, digits and :/_-",
}

# Request paths a launch flag fills as it is (field name, for errors.flag).
FLAG_PATHS: dict[tuple[PathItem, ...], str] = {
    ("RoleArn",): "role",
    ("AlgorithmSpecification", "TrainingImage"): "image_url",
    ("AppSpecification", "ImageUri"): "image_url",
    ("ResourceConfig", "InstanceCount"): "instance_count",
    ("ProcessingResources", "ClusterConfig", "InstanceCount"): "instance_count",
}
# Request members whose values may be secrets: a message names the entry, never shows the value.
SECRET_MAPS = frozenset({"Environment"})


# --- the model -------------------------------------------------------------------------------


def _model_file() -> Path | None:
    """Return botocore's SageMaker service model file (newest API version), found without importing botocore."""
    spec = importlib.util.find_spec("botocore")
    if spec is None or not spec.submodule_search_locations:
        return None
    service = Path(next(iter(spec.submodule_search_locations))) / "data" / _SERVICE
    versions = sorted((p for p in service.iterdir() if p.is_dir()), reverse=True) if service.is_dir() else []
    for version in versions:
        for name in _MODEL_FILES:
            if (version / name).is_file():
                return version / name
    return None


def _shape_refs(shape: Mapping[str, Any]) -> Iterator[str]:
    """Yield the names of the shapes ``shape`` refers to (members, list member, map key and value)."""
    for ref in (*shape.get("members", {}).values(), shape.get("member"), shape.get("key"), shape.get("value")):
        if ref:
            yield ref["shape"]


def reachable_shapes(shapes: Mapping[str, Any], roots: list[str]) -> dict[str, Any]:
    """Return the shapes reachable from ``roots``: all a walk of those operations' requests can meet."""
    kept: dict[str, Any] = {}
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name not in kept:
            kept[name] = shapes[name]
            pending.extend(_shape_refs(shapes[name]))
    return kept


@dataclass(frozen=True)
class ServiceShapes:
    """The input shape of each operation we call, and every shape reachable from them."""

    inputs: dict[str, str]  # operation -> its input shape's name
    shapes: dict[str, Any]  # shape name -> botocore's JSON definition


@functools.cache
def service_shapes() -> ServiceShapes | None:
    """Read the model once per process; ``None`` (logged) when botocore's model file cannot be read."""
    path = _model_file()
    try:
        if path is None:
            raise FileNotFoundError(f"no {_SERVICE} service model under botocore's data folder")
        with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as handle:
            model = json.load(handle)
        inputs = {op: model["operations"][op]["input"]["shape"] for op in OPERATIONS.values()}
        shapes = reachable_shapes(model["shapes"], list(inputs.values()))
    except (OSError, ValueError, KeyError) as exc:
        logger.warning("SageMaker's API limits are not checked before launch: %s.", exc)
        return None
    logger.debug("Read %d shapes of SageMaker's API model from %s.", len(shapes), path)
    return ServiceShapes(inputs=inputs, shapes=shapes)


# --- Java patterns -> Python -----------------------------------------------------------------


class UntranslatablePattern(ValueError):
    """A construct of a Java pattern this module has no exact (or safely wider) Python equivalent for."""


# Java's "." matches anything but a line terminator (Python's: anything but "\n").
JAVA_DOT = "[^\\n\\r\\x85\\u2028\\u2029]"
# \p{Z}: the Unicode separators (Zs, Zl, Zp); Python's re has no category classes, so listed.
SEPARATORS = "\\x20\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
# Properties that translate to ranges inside a Python class (Java's \p{Alnum} is ASCII by default).
_PROPERTY_RANGES = {"Alnum": "a-zA-Z0-9", "Z": SEPARATORS}
# Letters and numbers: only a negated class with Unicode \w says them in Python, so they become an
# alternative beside the bracket. [^\W_] (isalnum) is exactly \p{L} or \p{N}; [^\W\d_] is \p{L}
# plus the Nl and No numbers (like '²', 'Ⅻ'): wider, so it never refuses a letter SageMaker accepts.
_LETTERS_AND_NUMBERS = "(?u:[^\\W_])"
_LETTERS_OR_MORE = "(?u:[^\\W\\d_])"
_PROPERTY_RE = re.compile(r"\\([pP])(?:\{(\w+)\}|([A-Z]))")
# Escapes that mean the same in Java and in Python with re.ASCII (besides escaped punctuation).
_SAME_ESCAPES = frozenset("dDwWsStnrf")
_HEX_ESCAPE_RE = re.compile(r"\\(?:u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2})")


def _escape_at(java: str, index: int) -> tuple[str, str | None]:
    r"""
    Return the escape starting at ``java[index]`` and, for ``\p{Name}``, the property's name.

    Raises :class:`UntranslatablePattern` for escapes whose Java meaning Python does not share.
    """
    prop = _PROPERTY_RE.match(java, index)
    if prop:
        if prop.group(1) == "P":
            raise UntranslatablePattern(f"negated property {prop.group(0)}")
        return prop.group(0), prop.group(2) or prop.group(3)
    hex_escape = _HEX_ESCAPE_RE.match(java, index)
    if hex_escape:
        if hex_escape.group(0)[1] == "u" and 0xD800 <= int(hex_escape.group(0)[2:], 16) <= 0xDFFF:
            raise UntranslatablePattern(f"UTF-16 surrogate {hex_escape.group(0)} (Java pairs them)")
        return hex_escape.group(0), None
    escape = java[index : index + 2]
    char = escape[1:]
    if char in _SAME_ESCAPES or (char.isascii() and not char.isalnum() and char not in ("", " ")):
        return escape, None
    raise UntranslatablePattern(f"escape {escape!r}")


def _class_tokens(java: str, start: int) -> tuple[list[tuple[str, str | None]], int]:
    """
    Return the tokens of the bracket class opening at ``java[start]`` and the index after its ``]``.

    A token is ``(text, property name or None)``. Java's nested classes and intersections are refused.
    """
    tokens: list[tuple[str, str | None]] = []
    index = start + 1
    if java.startswith("^", index):
        tokens.append(("^", None))
        index += 1
    while index < len(java):
        char = java[index]
        if char == "]" and len(tokens) > (1 if tokens[:1] == [("^", None)] else 0):
            return tokens, index + 1
        if char == "[" or java.startswith("&&", index) or char == "]":
            raise UntranslatablePattern(f"class syntax {char!r} at {index} (nested, intersected or empty)")
        if char == "\\":
            text, name = _escape_at(java, index)
            tokens.append((text, name))
            index += len(text)
        else:
            tokens.append((char, None))
            index += 1
    raise UntranslatablePattern("an unterminated class")


def _translate_class(tokens: list[tuple[str, str | None]]) -> str:
    """Return a Python equivalent of one Java class (its tokens, without brackets)."""
    negated = tokens[:1] == [("^", None)]
    body = tokens[1:] if negated else tokens
    names = {name for _, name in body if name}
    for position, (_, name) in enumerate(body):
        neighbours = [text for text, _ in body[max(position - 1, 0) : position + 2]]
        if name and "-" in neighbours:
            raise UntranslatablePattern(f"a range next to \\p{{{name}}}")
    unknown = names - {"L", "N", *_PROPERTY_RANGES}
    if unknown or (names & {"L", "N"} and negated) or (names & {"L", "N"}) == {"N"}:
        raise UntranslatablePattern(
            f"property {sorted(unknown or names)} in {'a negated' if negated else 'this'} class"
        )
    rest = "".join(_PROPERTY_RANGES.get(name, "") if name else text for text, name in body)
    rest = "\\^" + rest[1:] if rest.startswith("^") else rest  # a literal ^ left first must not negate
    ranges = f"[{'^' if negated else ''}{rest}]" if rest else ""
    if not names & {"L", "N"}:
        return ranges
    letters = _LETTERS_AND_NUMBERS if {"L", "N"} <= names else _LETTERS_OR_MORE
    return f"(?:{letters}|{ranges})" if ranges else letters


def translate_pattern(java: str) -> str:
    r"""
    Return a Python regular expression (for ``re.ASCII``) that matches what the Java pattern ``java`` matches.

    Translated: ``\p{L}``, ``\p{N}``, ``\p{Z}``, ``\p{Alnum}`` (in or out of a class), Java's
    ``.``; escapes and syntax both languages share pass unchanged. Anything else raises
    :class:`UntranslatablePattern`.
    """
    out: list[str] = []
    index = 0
    while index < len(java):
        char = java[index]
        if char == "[":
            tokens, index = _class_tokens(java, index)
            out.append(_translate_class(tokens))
        elif char == "\\":
            text, name = _escape_at(java, index)
            out.append(_translate_class([(text, name)]) if name else text)
            index += len(text)
        else:
            out.append(JAVA_DOT if char == "." else char)
            index += 1
    return "".join(out)


@functools.cache
def compiled_pattern(java: str) -> re.Pattern[str] | None:
    """Return the compiled translation of ``java``, or ``None`` (logged once per pattern) when it has none."""
    try:
        return re.compile(translate_pattern(java), re.ASCII)
    except (UntranslatablePattern, re.error) as exc:
        logger.warning("SageMaker's pattern %r is not checked before launch: no Python translation (%s).", java, exc)
        return None


# --- the walk --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    """A value SageMaker would refuse: where it is, which shape it breaks, and how."""

    path: tuple[PathItem, ...]  # request keys and list indexes; a map entry ends with its key
    shape: str
    requirement: str  # "must be at most 512 characters long"
    got: str  # "600 characters", or the value quoted (then ``shows_value``)
    shows_value: bool = False
    is_key: bool = False  # the entry's key breaks the map's key shape, not its value


def _bounds(shape: Mapping[str, Any]) -> tuple[int, int | None]:
    return int(shape.get("min", 0)), shape.get("max")


def _length_rule(low: int, high: int | None, verb: str, unit: str) -> str:
    """``must be 1 to 128 characters long`` / ``must have at most 40 items``."""
    suffix = " long" if verb == "be" else ""
    if high is None:
        return f"must {verb} at least {low} {unit}{suffix}"
    if low > 0:
        return f"must {verb} {low} to {high} {unit}{suffix}"
    return f"must {verb} at most {high} {unit}{suffix}"


def _size_violation(
    size: int, shape_name: str, shape: Mapping[str, Any], path: tuple[PathItem, ...], unit: str
) -> Iterator[Violation]:
    low, high = _bounds(shape)
    if size < low or (high is not None and size > high):
        yield Violation(path, shape_name, _length_rule(low, high, "have", unit), str(size))


def _integer_violation(
    value: int, shape_name: str, shape: Mapping[str, Any], path: tuple[PathItem, ...]
) -> Iterator[Violation]:
    low, high = shape.get("min"), shape.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        if low is not None and high is not None:
            rule = f"must be an integer from {low} to {high}"
        else:
            rule = f"must be at least {low}" if low is not None else f"must be at most {high}"
        yield Violation(path, shape_name, rule, str(value))


def _string_violation(
    value: str, shape_name: str, shape: Mapping[str, Any], path: tuple[PathItem, ...], is_key: bool
) -> Iterator[Violation]:
    low, high = _bounds(shape)
    if len(value) < low or (high is not None and len(value) > high):
        rule = _length_rule(low, high, "be", "characters")
        yield Violation(path, shape_name, rule, f"{len(value)} characters", is_key=is_key)
    elif "enum" in shape and value not in shape["enum"]:
        if shape_name in OPEN_ENUMS:
            logger.warning(
                "%s is not among the installed botocore's SageMaker %s values; SageMaker may refuse it.",
                quoted(value),
                shape_name,
            )
        else:
            rule = "must be one of " + ", ".join(repr(item) for item in shape["enum"])
            yield Violation(path, shape_name, rule, quoted(value), shows_value=True, is_key=is_key)
    elif "pattern" in shape:
        compiled = compiled_pattern(shape["pattern"])
        if compiled is not None and not compiled.fullmatch(value):
            hint = PATTERN_HINTS.get(shape_name)
            rule = f"must contain only {hint}" if hint else f"must match SageMaker's pattern {shape['pattern']}"
            if looks_secret("", value):  # a URL with a password: never quoted
                yield Violation(path, shape_name, rule, "a value holding a password", is_key=is_key)
            else:
                yield Violation(path, shape_name, rule, quoted(value), shows_value=True, is_key=is_key)


def _scalar_violations(
    value: Any, shape_name: str, shapes: Mapping[str, Any], path: tuple[PathItem, ...], *, is_key: bool = False
) -> Iterator[Violation]:
    shape = shapes[shape_name]
    if shape["type"] == "string" and isinstance(value, str):
        yield from _string_violation(value, shape_name, shape, path, is_key)
    elif shape["type"] in ("integer", "long") and isinstance(value, int) and not isinstance(value, bool):
        yield from _integer_violation(value, shape_name, shape, path)


def violations(
    value: Any, shape_name: str, shapes: Mapping[str, Any], path: tuple[PathItem, ...] = ()
) -> Iterator[Violation]:
    """
    Yield every value under ``value`` that breaks a limit of shape ``shape_name``, in request order.

    Types, required members and unknown members are botocore's ``ParamValidator``'s business: a
    value of the wrong type is skipped here.
    """
    shape = shapes[shape_name]
    if shape["type"] == "structure" and isinstance(value, Mapping):
        members = shape.get("members", {})
        for member, item in value.items():
            if member in members:
                yield from violations(item, members[member]["shape"], shapes, (*path, member))
    elif shape["type"] == "list" and isinstance(value, (list, tuple)):
        yield from _size_violation(len(value), shape_name, shape, path, "items")
        for index, item in enumerate(value):
            yield from violations(item, shape["member"]["shape"], shapes, (*path, index))
    elif shape["type"] == "map" and isinstance(value, Mapping):
        yield from _size_violation(len(value), shape_name, shape, path, "entries")
        for key, item in value.items():
            yield from _scalar_violations(key, shape["key"]["shape"], shapes, (*path, key), is_key=True)
            yield from violations(item, shape["value"]["shape"], shapes, (*path, key))
    else:
        yield from _scalar_violations(value, shape_name, shapes, path)


# --- the message -----------------------------------------------------------------------------


def parameter_labels(params: Mapping[str, Any], kind: JobKind) -> dict[tuple[PathItem, ...], str]:
    """
    Request path -> the ``--sm-estimator-parameters`` name that set it, for the names in ``params``.

    ``network_config``'s pieces are named inside it (``network_config['subnets']``).
    """
    labels: dict[tuple[PathItem, ...], str] = {}
    for name, value in params.items():
        field = FIELDS[kind].get(name)
        if field is None:
            continue
        labels[field.path] = name
        if isinstance(value, Mapping) and name == "network_config":
            for piece in value:
                if piece in FIELDS[kind]:
                    labels[FIELDS[kind][piece].path] = f"{name}[{piece!r}]"
    return labels


def _items(path: tuple[PathItem, ...]) -> str:
    """``(0, 'Regex')`` -> ``[0]['Regex']``."""
    return "".join(f"[{item}]" if isinstance(item, int) else f"[{item!r}]" for item in path)


def request_path(path: tuple[PathItem, ...]) -> str:
    """``('Tags', 2, 'Value')`` -> ``Tags[2].Value``; a map entry's key in brackets."""
    text = ""
    for item in path:
        if isinstance(item, int):
            text += f"[{item}]"
        elif text and not item.isidentifier():
            text += f"[{item!r}]"
        else:
            text += f".{item}" if text else item
    return text


def _entry_label(label: str, violation: Violation, request: Mapping[str, Any]) -> str:
    """Name a tag or an environment variable by its key: ``tags value of 'team'``, ``env value of GS_TOKEN``."""
    rest = violation.path[1:]
    if not rest:
        return label
    if violation.path[0] == "Tags":
        if rest[-1] == "Key":
            return f"{label} key"
        tag = request["Tags"][rest[0]]
        return f"{label} value of {quoted(tag.get('Key'))}"
    key = str(rest[0])
    if violation.is_key:
        return f"{label} variable {quoted(key)}"
    return f"{label} value of {key if key.isidentifier() and len(key) <= 100 else quoted(key)}"


def subject(violation: Violation, labels: Mapping[tuple[PathItem, ...], str], request: Mapping[str, Any]) -> str:
    """Name what broke the limit: the parameter (as the user wrote it), a launch flag, else the request path."""
    path = violation.path
    for size in range(len(path), 0, -1):
        prefix = path[:size]
        if prefix in labels:
            label = labels[prefix]
            if path[0] in ("Tags", "Environment"):
                return f"{PARAM_FLAG}: {_entry_label(label, violation, request)}"
            return f"{PARAM_FLAG}: {label}{_items(path[size:])}"
        if prefix in FLAG_PATHS:
            return f"{flag(FLAG_PATHS[prefix])}{_items(path[size:])}"
    if len(path) >= 2 and path[-2] == "ContainerArguments" and isinstance(path[-1], int):
        return _container_argument(path, request)
    return f"The request's {request_path(path)}"


def _container_argument(path: tuple[PathItem, ...], request: Mapping[str, Any]) -> str:
    """Name a container argument by the flag it belongs to: ``The value of --note``, ``The argument --x``."""
    arguments: Any = request
    for item in path[:-1]:
        arguments = arguments[item]
    index = int(path[-1])
    before = str(arguments[index - 1]) if index else ""
    if (
        before.startswith("--")
        and before != "--"
        and before.isprintable()
        and not str(arguments[index]).startswith("-")
    ):
        return f"The value of {before[:MAX_QUOTED_CHARS]}"
    return f"The container argument {quoted(str(arguments[index]).partition('=')[0])}"


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _own_entries(
    violation: Violation,
    request: Mapping[str, Any],
    labels: Mapping[tuple[PathItem, ...], str],
    params: Mapping[str, Any],
) -> str:
    """For a count of tags or variables: `` (with A and B, which the job sets itself)``."""
    if violation.path not in (("Tags",), ("Environment",)):
        return ""
    given = params.get(labels.get(violation.path, ""), {})
    if violation.path == ("Environment",):
        present = [str(key) for key in request.get("Environment", {})]
        mine = set(given) if isinstance(given, Mapping) else set()
    else:
        present = [str(tag.get("Key")) for tag in request.get("Tags", [])]
        mine = set(given) if isinstance(given, Mapping) else {t.get("Key") for t in given if isinstance(t, Mapping)}
    own = [key for key in present if key not in mine]
    return f" (with {_and(own)}, which the job sets itself)" if own else ""


def describe(violation: Violation, request: Mapping[str, Any], params: Mapping[str, Any], kind: JobKind) -> str:
    """One sentence naming the parameter, the limit and (unless it may be a secret) the value."""
    labels = parameter_labels(params, kind)
    secret = len(violation.path) > 1 and violation.path[0] in SECRET_MAPS and not violation.is_key
    got = "" if secret and violation.shows_value else f", got {violation.got}"
    note = _own_entries(violation, request, labels, params)
    return f"{subject(violation, labels, request)} {violation.requirement}{got}{note}."


# --- the check -------------------------------------------------------------------------------


def _instance_type(request: Mapping[str, Any]) -> Any:
    resources = request.get("ResourceConfig") or request.get("ProcessingResources", {}).get("ClusterConfig", {})
    return resources.get("InstanceType")


def check_request(request: Mapping[str, Any], kind: JobKind, params: Mapping[str, Any]) -> None:
    """
    Raise :class:`JobSpecError` for the first value of ``request`` SageMaker's API would refuse.

    ``params`` are the spec's ``--sm-estimator-parameters`` (to name the parameter a value came from).
    """
    if _instance_type(request) == LOCAL_INSTANCE_TYPE:
        return  # never sent to SageMaker (see the module docstring)
    model = service_shapes()
    if model is None:
        return
    found = next(violations(request, model.inputs[OPERATIONS[kind]], model.shapes), None)
    if found is not None:
        raise JobSpecError(describe(found, request, params, kind))
