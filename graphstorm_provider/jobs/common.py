"""
The launch flags every step shares, argv parsing, and the build pipeline.

A spec is built in two stages, each run once per spec:

1. **parse** (``JobSpec.parse``, run by the constructor): the raw keyword arguments (strings
   from Airflow templates, argparse values) are validated and normalised into the values the
   frozen dataclass then holds; a bad value raises :class:`JobSpecError` naming its flag.
2. **render** (at the end of construction): the complete boto3 request, without its job name,
   so every check that needs the whole request (``--sm-estimator-parameters`` mapping,
   SageMaker's argument limits: the API model's maxima, patterns and enums, ``api_limits.py``)
   fails at construction. ``build(job_name)`` only names a copy of that render.

A step spec subclasses :class:`JobSpec`, adds its own fields (its CLI flags in snake_case) and
overrides exactly these points:

* ``_parse_step(values)`` (classmethod): validate and normalise the step's own fields in the
  ``values`` dict, and set ``instance_count``;
* ``_add_step_arguments(group)`` (classmethod): the step's command-line flags (``add_step_arguments``
  adds them for ``argument_parser()`` and for ``gs-sagemaker compose``);
* ``entry_arguments()``: our flags for the step's entry point;
* ``outputs()``: the URIs the job writes;
* ``_render(name, arguments)``: the request skeleton (``skeletons.training_request`` or
  ``processing_request``).

Everything else (common flags, forwarded GraphStorm arguments, job names,
``--sm-estimator-parameters``, SageMaker limits) happens here, once.
"""

from __future__ import annotations

import argparse
import copy
import functools
import logging
import shlex
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, ClassVar, Protocol, cast

from graphstorm_provider.argparsing import RaisingArgumentParser, long_options, mistyped_flag
from graphstorm_provider.jobs import validation as v
from graphstorm_provider.jobs.api_limits import check_request
from graphstorm_provider.jobs.digest import with_request_digest
from graphstorm_provider.jobs.errors import JobSpecError
from graphstorm_provider.jobs.request import JOB_NAME_KEYS, JobKind, JobRequest
from graphstorm_provider.jobs.skeletons import ARGUMENT_SEPARATOR, check_container_arguments, derive_job_name
from graphstorm_provider.jobs.sm_params import apply_sm_parameters, normalise_sm_parameters, rendered_literal

logger = logging.getLogger(__name__)

DEFAULT_REGION = "us-west-2"
GPU_INSTANCE_TYPE = "ml.g4dn.12xlarge"  # GraphStorm's default for train / infer
CPU_INSTANCE_TYPE = "ml.m5.12xlarge"  # GraphStorm's default for gconstruct / partition
# Each step's input URI fields: no output may be (or lie inside) one of them.
INPUT_FIELDS = {
    "gconstruct": ("input_graph_s3",),
    "partition": ("graph_data_s3",),
    "train": ("graph_data_s3", "model_checkpoint_to_load"),
    "infer": ("graph_data_s3", "model_artifact_s3", "raw_node_mappings_s3"),
}
# The render at construction has no job name yet; build() replaces this placeholder.
_UNNAMED_JOB = "unnamed"
# Flags GraphStorm's SageMaker README says must be "set to 'None'" on SageMaker: passing None disables them.
_DISABLE_WITH_NONE = frozenset({"save-embed-path", "save-prediction-path"})


def _split_flag_strings(args: Iterable[str]) -> tuple[str, ...]:
    """
    Split each argument holding several GraphStorm flags (``"--num-epochs 2 --lr 0.01"``) as a shell would.

    GraphStorm's SageMaker scripts split such a string; as one argument GraphStorm's parser would ignore
    it. A flag whose value holds spaces after ``=`` (``--extra-envs=A=1 B=2``) stays one argument.
    """
    out: list[str] = []
    for arg in args:
        head = arg.split(maxsplit=1)[0] if arg.strip() else arg
        if arg.startswith("--") and head != arg and "=" not in head:
            try:
                out.extend(shlex.split(arg))
            except ValueError as exc:  # "No closing quotation"
                raise JobSpecError(f"The GraphStorm arguments (graphstorm_args) cannot be split: {exc}.") from exc
        else:
            out.append(arg)
    return tuple(out)


def or_default(value: Any, default: str) -> Any:
    """``value``, or ``default`` when it is missing (None): an empty string is kept, to be refused."""
    return default if value is None else value


class ArgumentAdder(Protocol):
    """What a step's ``_add_step_arguments`` adds its flags to: a parser, a group, or :class:`_Omitting`."""

    def add_argument(self, *flags: str, **kwargs: Any) -> argparse.Action | None: ...


class _Omitting:
    """Passes ``add_argument`` calls on to ``group``, except those whose destination is in ``omit``."""

    def __init__(self, group: argparse._ActionsContainer, omit: frozenset[str]) -> None:
        self.group = group
        self.omit = omit

    def add_argument(self, *flags: str, **kwargs: Any) -> argparse.Action | None:
        dest = kwargs.get("dest") or flags[0].lstrip("-").replace("-", "_")
        return None if dest in self.omit else self.group.add_argument(*flags, **kwargs)


class _ParsedOnConstruction(type):
    """
    Metaclass of :class:`JobSpec`.

    ``Spec(**raw)`` is ``Spec(**Spec.parse(**raw))``, so the dataclass only ever holds parsed values (and stays frozen,
    with no attribute patched after ``__init__``).
    """

    def __call__(cls, *args: Any, **raw: Any) -> Any:
        if args:
            raise TypeError(f"{cls.__name__} takes keyword arguments only.")
        spec_class = cast("type[JobSpec]", cls)  # the metaclass of JobSpec and its subclasses only
        return super().__call__(**spec_class.parse(**raw))


@dataclass(frozen=True, kw_only=True)
class JobSpec(metaclass=_ParsedOnConstruction):
    """
    Common launch flags (``<gs-root>/sagemaker/launch/common_parser.py`` in GraphStorm's SageMaker launch scripts).

    Every field may arrive as a string (Airflow renders templates to strings):
    counts and booleans are converted, URIs normalised (see ``validation``).
    """

    step: ClassVar[str]
    kind: ClassVar[JobKind]
    step_tag: ClassVar[str]  # GraphStorm_Task tag value, as in GraphStorm's SageMaker launch scripts
    default_instance_type: ClassVar[str] = CPU_INSTANCE_TYPE
    forwards_graphstorm_args: ClassVar[bool] = True
    # GraphStorm flags (without dashes) the job sets itself -> why they cannot be forwarded.
    reserved_graphstorm_flags: ClassVar[Mapping[str, str]] = {}

    image_url: str  # required: parse() always sets it (or fails naming the flag)
    role: str  # required: parse() always sets it (or fails naming the flag)
    instance_type: str  # required: parse() always sets it (or fails naming the flag)
    instance_count: int  # set by each step's _parse_step (_parse_count)
    region: str = DEFAULT_REGION
    task_name: str | None = None
    sm_estimator_parameters: str | Mapping[str, Any] | None = None  # held parsed: a dict (see sm_parameters)
    async_execution: bool = False
    log_level: str = "INFO"
    graphstorm_args: tuple[str, ...] = ()

    # --- construction -----------------------------------------------------------------

    @classmethod
    def parse(cls, **raw: Any) -> dict[str, Any]:
        """
        Validate and normalise raw keyword arguments into the values the spec holds.

        Raises :class:`JobSpecError` (one sentence naming the flag) for the first bad value.
        """
        values = dict(raw)
        # Only a missing value (None) takes the default: an empty one is a mistake, named (v.required_str).
        itype = v.instance_type("instance_type", or_default(values.get("instance_type"), cls.default_instance_type))
        values["instance_type"] = itype
        values["image_url"] = v.image_url("image_url", values.get("image_url"))
        values["role"] = v.role("role", values.get("role"), instance_type=itype)
        values["region"] = v.region("region", or_default(values.get("region"), DEFAULT_REGION))
        task_name = values.get("task_name")
        values["task_name"] = v.name_prefix("task_name", task_name) if task_name else None
        values["async_execution"] = v.boolean("async_execution", values.get("async_execution", False))
        values["log_level"] = v.choice(
            "log_level", or_default(values.get("log_level"), "INFO"), v.LOG_LEVELS, upper=True
        )
        values["graphstorm_args"] = cls._forwarded_args(values.get("graphstorm_args", ()))
        cls._parse_step(values)
        values["sm_estimator_parameters"] = normalise_sm_parameters(values.get("sm_estimator_parameters"))
        return values

    def __post_init__(self) -> None:
        v.outputs_apart(self.outputs(), {name: getattr(self, name, None) for name in INPUT_FIELDS.get(self.step, ())})
        # Render once, now, so every check that needs the whole request (parameter mapping,
        # SageMaker's argument limits) fails at construction, not at launch.
        _ = self._unnamed_request

    @classmethod
    def _parse_step(cls, values: dict[str, Any]) -> None:
        """Validate and normalise the step's own fields in ``values``; set ``instance_count``."""
        raise NotImplementedError

    @staticmethod
    def _parse_uri(values: dict[str, Any], name: str, *, folder: bool = True, required: bool = True) -> None:
        values[name] = v.uri(
            name, values.get(name), instance_type=values["instance_type"], folder=folder, required=required
        )

    @staticmethod
    def _parse_count(values: dict[str, Any], default: int) -> int:
        given = values.get("instance_count")
        count = default if given is None else v.positive_int("instance_count", given, maximum=v.MAX_INSTANCE_COUNT)
        values["instance_count"] = count
        return count

    @classmethod
    def _forwarded_args(cls, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str) and isinstance(spelled := rendered_literal(value), list):
            value = spelled  # a rendered list param: "['--num-epochs', '2']"
        if isinstance(value, str):
            try:
                value = shlex.split(value)
            except ValueError as exc:  # "No closing quotation"
                raise JobSpecError(f"The GraphStorm arguments (graphstorm_args) cannot be split: {exc}.") from exc
        if not isinstance(value, Sequence) or not all(
            isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in value
        ):
            raise JobSpecError("The GraphStorm arguments (graphstorm_args) must be a list of strings or one string.")
        args = _split_flag_strings(str(a) for a in value)
        if args and not cls.forwards_graphstorm_args:
            shown = " ".join(a if a.isprintable() else repr(a) for a in args)  # the message stays one line
            raise JobSpecError(f"gs-sagemaker {cls.step}: unrecognized arguments: {shown}.")
        if args and not args[0].startswith("--"):
            raise JobSpecError(f"Unexpected argument {args[0]!r}: GraphStorm options must start with --.")
        seen: set[str] = set()
        for index, arg in enumerate(args):
            if not arg.startswith("--"):
                continue
            written, _, inline = arg[2:].partition("=")
            if written.replace("_", "-") in seen:
                raise JobSpecError(
                    f"--{written} is given twice in the GraphStorm arguments (graphstorm_args): "
                    f"GraphStorm would silently take the last one."
                )
            seen.add(written.replace("_", "-"))
            name = cls._reserved_flag(written.replace("_", "-"))
            following = inline or (args[index + 1] if index + 1 < len(args) else "")
            if name and not (name in _DISABLE_WITH_NONE and following == "None"):
                shown = f"--{name}" if written.replace("_", "-") == name else f"--{written} (--{name})"
                raise JobSpecError(
                    f"{shown} cannot be passed to GraphStorm here: {cls.reserved_graphstorm_flags[name]}."
                )
        return args

    @classmethod
    def _reserved_flag(cls, name: str) -> str | None:
        """
        Return the reserved flag that ``name`` means, also when abbreviated.

        GraphStorm's argparse accepts unique prefixes (``--save-pred``), which would slip past an
        exact match.
        """
        if name in cls.reserved_graphstorm_flags:
            return name
        matches = [flag for flag in cls.reserved_graphstorm_flags if len(name) >= 4 and flag.startswith(name)]
        return matches[0] if len(matches) == 1 else None

    # --- argv -------------------------------------------------------------------------

    @classmethod
    def argument_parser(cls) -> argparse.ArgumentParser:
        """Return the flags of GraphStorm's SageMaker launch script for this step (for ``gs-sagemaker <step> --help``)."""
        prog = f"gs-sagemaker {cls.step}"
        parser = RaisingArgumentParser(
            prog=prog,
            error_type=lambda message: JobSpecError(f"{prog}: {message}."),
            allow_abbrev=False,
            description=cls.__doc__.strip().splitlines()[0] if cls.__doc__ else None,
            epilog="Unrecognised --flags are forwarded to GraphStorm in order, as given."
            if cls.forwards_graphstorm_args
            else None,
        )
        common = parser.add_argument_group("Common arguments")
        common.add_argument(
            "--image-url", "--image-uri", dest="image_url", required=True, help="GraphStorm SageMaker image URI"
        )
        common.add_argument("--role", required=True, help="SageMaker execution role ARN")
        common.add_argument("--instance-type", help=f"default {cls.default_instance_type}; 'local' runs here")
        common.add_argument("--instance-count", type=int, help="number of instances")
        common.add_argument("--region", default=DEFAULT_REGION, help=f"AWS region (default {DEFAULT_REGION})")
        common.add_argument("--task-name", help="job name prefix; a UTC timestamp is appended")
        common.add_argument(
            "--sm-estimator-parameters",
            help='SageMaker SDK 2 arguments, "name=value name=value" with Python-literal values without spaces',
        )
        common.add_argument("--async-execution", action="store_true", help="return once the job is started")
        common.add_argument("--log-level", default="INFO", type=str.upper, choices=v.LOG_LEVELS)
        common.add_argument(
            "--entry-point",
            help="accepted with GraphStorm's own script paths, for compatibility with its SageMaker launch "
            "scripts (the image's entry point under /opt/ml/code runs); any other script is refused",
        )
        cls.add_step_arguments(parser.add_argument_group(f"{cls.step} arguments"))
        return parser

    @classmethod
    def add_step_arguments(cls, group: argparse._ActionsContainer, *, omit: Collection[str] = ()) -> None:
        """
        Add the step's own flags (not the common ones) to ``group``, a parser or argument group.

        For ``argument_parser()`` and for ``gs-sagemaker compose <action>``.

        :param omit: destinations (field names) to leave out, because the caller declares them itself.
        """
        cls._add_step_arguments(_Omitting(group, frozenset(omit)))

    @classmethod
    def _add_step_arguments(cls, group: ArgumentAdder) -> None:
        """Add the step's own flags with ``group.add_argument``."""
        raise NotImplementedError

    @classmethod
    def from_argv(cls, argv: Sequence[str], *, other_flags: Collection[str] = ()) -> JobSpec:
        """
        Parse a command line of GraphStorm's SageMaker launch scripts.

        Unknown ``--flags`` (and anything after ``--``) become ``graphstorm_args`` in order, except an
        unknown flag before ``--`` that looks like a typo of one of ours, refused with "did you mean".

        :param other_flags: the calling command's own flags, taken out of ``argv`` already
            (``gs-sagemaker``'s ``--dry-run``, ...): their typos are refused too.
        """
        argv = [str(a) for a in argv]
        explicit: list[str] = []
        if ARGUMENT_SEPARATOR in argv:
            cut = argv.index(ARGUMENT_SEPARATOR)
            argv, explicit = argv[:cut], argv[cut + 1 :]
        parser = cls.argument_parser()
        _warn_repeated_flags(cls.step, parser, argv)
        namespace, extras = parser.parse_known_args(argv)
        known = [*long_options(parser), *other_flags]
        for arg in extras:
            if meant := mistyped_flag(arg, known):
                raise JobSpecError(
                    f"gs-sagemaker {cls.step}: {arg.partition('=')[0]} is not one of its flags (did you mean "
                    f"{meant}?); to pass it to GraphStorm as it is, put it after {ARGUMENT_SEPARATOR}."
                )
        kwargs = vars(namespace)
        entry_point = kwargs.pop("entry_point", None)
        if entry_point:
            script = f"{cls.step}_entry.py"
            if PurePosixPath(entry_point).name != script:
                own_code = (
                    "; for your own code use --custom-script"
                    if "custom_script" in {f.name for f in fields(cls)}
                    else ""
                )
                raise JobSpecError(
                    f"--entry-point {entry_point} is not GraphStorm's run/{script}: the {cls.step} job always runs "
                    f"the image's own entry point (/opt/ml/code/{script}){own_code}."
                )
            logger.info("--entry-point %s: the image's own /opt/ml/code/%s runs.", entry_point, script)
        return cls(**kwargs, graphstorm_args=tuple(extras + explicit))

    # --- rendering --------------------------------------------------------------------

    @property
    def sm_parameters(self) -> dict[str, Any]:
        """``sm_estimator_parameters`` parsed into SDK-2 keyword arguments."""
        return dict(cast("Mapping[str, Any] | None", self.sm_estimator_parameters) or {})  # parsed: a dict

    def default_job_base(self) -> str:
        return f"gs-{self.step}"

    def outputs(self) -> dict[str, str]:
        """Return the URIs this job writes (pushed to XCom by the operators)."""
        raise NotImplementedError

    def entry_arguments(self) -> list[str]:
        """Our flags for ``/opt/ml/code/<step>_entry.py`` (before ``--``)."""
        raise NotImplementedError

    def container_arguments(self) -> list[str]:
        return check_container_arguments([*self.entry_arguments(), ARGUMENT_SEPARATOR, *self.graphstorm_args])

    @functools.cached_property
    def _unnamed_request(self) -> dict[str, Any]:
        """
        The request rendered once per spec (at construction), with a placeholder job name.

        (``cached_property`` stores it in the instance ``__dict__``: a derived value, not a field.)
        """
        request = self._render(_UNNAMED_JOB, self.container_arguments())
        request = apply_sm_parameters(request, self.sm_parameters, self.kind)
        request = with_request_digest(request)  # the step cache's key (jobs/digest.py); it ignores the name
        check_request(request, self.kind, self.sm_parameters)  # SageMaker's maxima, patterns, enums (api_limits.py)
        return request

    def build(self, job_name: str | None = None, *, now: datetime | None = None) -> JobRequest:
        """
        Return the complete boto3 ``create_training_job`` / ``create_processing_job`` kwargs, named.

        ``job_name`` defaults to ``--task-name`` (or ``gs-<step>[-<graph>]``) plus a UTC timestamp.
        The request is not rendered again: this names a copy of the render made at construction.
        """
        if job_name:
            name = v.job_name("job_name", job_name)
        else:
            name = derive_job_name(self.task_name or self.default_job_base(), now or datetime.now(UTC))
        request = copy.deepcopy(self._unnamed_request)
        request[JOB_NAME_KEYS[self.kind]] = name
        return JobRequest(kind=self.kind, step=self.step, request=request, outputs=self.outputs(), region=self.region)

    def _render(self, name: str, arguments: list[str]) -> dict[str, Any]:
        raise NotImplementedError


def _warn_repeated_flags(step: str, parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """
    Warn of a flag of ours given more than once.

    The last one is used, as in GraphStorm's launch scripts (argparse), and what the earlier ones
    said is dropped (for ``--sm-estimator-parameters``, all of it).
    """
    dests = {option: action.dest for action in parser._actions for option in action.option_strings}
    seen: dict[str, str] = {}
    warned: set[str] = set()
    for arg in argv:
        flag = arg.partition("=")[0]
        dest = dests.get(flag) if flag.startswith("--") else None
        if dest is None:
            continue
        if dest in seen and dest not in warned:
            warned.add(dest)
            same = flag if seen[dest] == flag else f"{flag} (the same as {seen[dest]})"
            logger.warning(
                "gs-sagemaker %s: %s is given more than once: the last one is used and the others are dropped.",
                step,
                same,
            )
        seen[dest] = flag
