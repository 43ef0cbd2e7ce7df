"""The launch flags every step shares, argv parsing, and the build pipeline.

A step spec subclasses :class:`JobSpec`, adds its own fields (its CLI flags in
snake_case), validates them in ``_validate_step`` and renders its request in
``_render``. Everything else (common flags, forwarded GraphStorm arguments, job
names, ``--sm-estimator-parameters``, SageMaker limits) happens here, once.
"""

from __future__ import annotations

import argparse
import logging
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar, NoReturn

from graphstorm_provider.jobs import validation as v
from graphstorm_provider.jobs.errors import JobSpecError
from graphstorm_provider.jobs.request import JobKind, JobRequest
from graphstorm_provider.jobs.skeletons import ARGUMENT_SEPARATOR, check_container_arguments, derive_job_name
from graphstorm_provider.jobs.sm_params import apply_sm_parameters, normalise_sm_parameters

logger = logging.getLogger(__name__)

DEFAULT_REGION = "us-west-2"
GPU_INSTANCE_TYPE = "ml.g4dn.12xlarge"  # GraphStorm's default for train / infer
CPU_INSTANCE_TYPE = "ml.m5.12xlarge"  # GraphStorm's default for gconstruct / partition
# build() during validation needs some name; it never leaves the spec.
_VALIDATION_JOB_NAME = "validation"
# Flags the seed says must be "set to 'None'" on SageMaker: passing None disables them.
_DISABLE_WITH_NONE = frozenset({"save-embed-path", "save-prediction-path"})


class SpecArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are :class:`JobSpecError` (no SystemExit, no usage dump)."""

    def error(self, message: str) -> NoReturn:
        raise JobSpecError(f"{self.prog}: {message}.")


@dataclass(frozen=True, kw_only=True)
class JobSpec:
    """Common launch flags (``<gs-root>/sagemaker/launch/common_parser.py`` in the seed).

    Every field may arrive as a string (Airflow renders templates to strings):
    counts and booleans are converted, URIs normalised (see ``validation``).
    """

    step: ClassVar[str]
    kind: ClassVar[JobKind]
    step_tag: ClassVar[str]  # GraphStorm_Task tag value, as in the seed
    default_instance_type: ClassVar[str] = CPU_INSTANCE_TYPE
    forwards_graphstorm_args: ClassVar[bool] = True
    # GraphStorm flags (without dashes) the job sets itself -> why they cannot be forwarded.
    reserved_graphstorm_flags: ClassVar[Mapping[str, str]] = {}

    image_url: str | None = None
    role: str | None = None
    instance_type: str | None = None
    instance_count: int | None = None
    region: str = DEFAULT_REGION
    task_name: str | None = None
    sm_estimator_parameters: str | Mapping[str, Any] | None = None
    async_execution: bool = False
    log_level: str = "INFO"
    graphstorm_args: tuple[str, ...] = ()

    # --- construction -----------------------------------------------------------------

    def __post_init__(self) -> None:
        itype = v.instance_type("instance_type", self.instance_type or self.default_instance_type)
        self._set("instance_type", itype)
        self._set("image_url", v.image("image_url", self.image_url))
        self._set("role", v.role("role", self.role, instance_type=itype))
        self._set("region", v.region("region", self.region or DEFAULT_REGION))
        self._set("task_name", v.name_prefix("task_name", self.task_name) if self.task_name else None)
        self._set("async_execution", v.boolean("async_execution", self.async_execution))
        self._set("log_level", v.choice("log_level", self.log_level or "INFO", v.LOG_LEVELS, upper=True))
        self._set("graphstorm_args", self._forwarded_args(self.graphstorm_args))
        self._validate_step()
        self._set("_sm_params", normalise_sm_parameters(self.sm_estimator_parameters))
        # Render once so every check that needs the whole request (parameter mapping,
        # SageMaker's argument limits) fails at construction, not at launch.
        self.build(_VALIDATION_JOB_NAME)

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def _uri(self, name: str, *, folder: bool = True, required: bool = True) -> None:
        value = getattr(self, name)
        self._set(name, v.uri(name, value, instance_type=self.instance_type, folder=folder, required=required))

    def _count(self, default: int) -> int:
        count = default if self.instance_count in (None, "") else v.positive_int("instance_count", self.instance_count)
        self._set("instance_count", count)
        return count

    def _validate_step(self) -> None:
        """Validate and normalise the step's own fields; set ``instance_count``."""
        raise NotImplementedError

    def _forwarded_args(self, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            try:
                value = shlex.split(value)
            except ValueError as exc:  # "No closing quotation"
                raise JobSpecError(f"The GraphStorm arguments (graphstorm_args) cannot be split: {exc}.") from exc
        if not isinstance(value, Sequence) or not all(
            isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in value
        ):
            raise JobSpecError("The GraphStorm arguments (graphstorm_args) must be a list of strings or one string.")
        args = tuple(str(a) for a in value)
        if args and not self.forwards_graphstorm_args:
            raise JobSpecError(f"gs-sagemaker {self.step}: unrecognized arguments: {' '.join(args)}.")
        if args and not args[0].startswith("--"):
            raise JobSpecError(f"Unexpected argument {args[0]!r}: GraphStorm options must start with --.")
        for index, arg in enumerate(args):
            if not arg.startswith("--"):
                continue
            written, _, inline = arg[2:].partition("=")
            name = self._reserved_flag(written.replace("_", "-"))
            following = inline or (args[index + 1] if index + 1 < len(args) else "")
            if name and not (name in _DISABLE_WITH_NONE and following == "None"):
                shown = f"--{name}" if written.replace("_", "-") == name else f"--{written} (--{name})"
                raise JobSpecError(f"{shown} cannot be passed to GraphStorm here: "
                                   f"{self.reserved_graphstorm_flags[name]}.")
        return args

    def _reserved_flag(self, name: str) -> str | None:
        """The reserved flag ``name`` means, also when abbreviated: GraphStorm's argparse
        accepts unique prefixes (``--save-pred``), which would slip past an exact match."""
        if name in self.reserved_graphstorm_flags:
            return name
        matches = [flag for flag in self.reserved_graphstorm_flags if len(name) >= 4 and flag.startswith(name)]
        return matches[0] if len(matches) == 1 else None

    # --- argv -------------------------------------------------------------------------

    @classmethod
    def argument_parser(cls) -> argparse.ArgumentParser:
        """The seed's flags for this step (for ``gs-sagemaker <step> --help``)."""
        parser = SpecArgumentParser(
            prog=f"gs-sagemaker {cls.step}",
            allow_abbrev=False,
            description=cls.__doc__.strip().splitlines()[0] if cls.__doc__ else None,
            epilog="Unrecognised --flags are forwarded to GraphStorm in order, as given."
            if cls.forwards_graphstorm_args else None,
        )
        common = parser.add_argument_group("Common arguments")
        common.add_argument("--image-url", "--image-uri", dest="image_url", required=True,
                            help="GraphStorm SageMaker image URI")
        common.add_argument("--role", required=True, help="SageMaker execution role ARN")
        common.add_argument("--instance-type", help=f"default {cls.default_instance_type}; 'local' runs here")
        common.add_argument("--instance-count", type=int, help="number of instances")
        common.add_argument("--region", default=DEFAULT_REGION, help=f"AWS region (default {DEFAULT_REGION})")
        common.add_argument("--task-name", help="job name prefix; a UTC timestamp is appended")
        common.add_argument("--sm-estimator-parameters", help='SageMaker SDK 2 arguments, "name=value name=value" '
                            "with Python-literal values without spaces")
        common.add_argument("--async-execution", action="store_true", help="return once the job is started")
        common.add_argument("--log-level", default="INFO", type=str.upper, choices=v.LOG_LEVELS)
        common.add_argument("--entry-point", help="accepted for compatibility with the seed's launch scripts and "
                            "ignored: the entry points are in the image under /opt/ml/code")
        cls._add_step_arguments(parser.add_argument_group(f"{cls.step} arguments"))
        return parser

    @classmethod
    def _add_step_arguments(cls, group: argparse._ArgumentGroup) -> None:
        raise NotImplementedError

    @classmethod
    def from_argv(cls, argv: Sequence[str]) -> JobSpec:
        """Parse the seed's command line; unknown ``--flags`` (and anything after ``--``)
        become ``graphstorm_args`` in order."""
        argv = [str(a) for a in argv]
        explicit: list[str] = []
        if ARGUMENT_SEPARATOR in argv:
            cut = argv.index(ARGUMENT_SEPARATOR)
            argv, explicit = argv[:cut], argv[cut + 1:]
        namespace, extras = cls.argument_parser().parse_known_args(argv)
        kwargs = vars(namespace)
        entry_point = kwargs.pop("entry_point", None)
        if entry_point:
            logger.info("Ignoring --entry-point %s: the %s entry point is in the image under /opt/ml/code.",
                        entry_point, cls.step)
        return cls(**kwargs, graphstorm_args=tuple(extras + explicit))

    # --- rendering --------------------------------------------------------------------

    @property
    def sm_parameters(self) -> dict[str, Any]:
        """``sm_estimator_parameters`` parsed into SDK-2 keyword arguments."""
        return dict(self._sm_params)  # type: ignore[attr-defined]

    def default_job_base(self) -> str:
        return f"gs-{self.step}"

    def outputs(self) -> dict[str, str]:
        """The URIs this job writes (pushed to XCom by the operators)."""
        raise NotImplementedError

    def entry_arguments(self) -> list[str]:
        """Our flags for ``/opt/ml/code/<step>_entry.py`` (before ``--``)."""
        raise NotImplementedError

    def container_arguments(self) -> list[str]:
        return check_container_arguments([*self.entry_arguments(), ARGUMENT_SEPARATOR, *self.graphstorm_args])

    def build(self, job_name: str | None = None, *, now: datetime | None = None) -> JobRequest:
        """Render the complete boto3 ``create_training_job`` / ``create_processing_job`` kwargs.

        ``job_name`` defaults to ``--task-name`` (or ``gs-<step>[-<graph>]``) plus a UTC timestamp.
        """
        if job_name:
            name = v.job_name("job_name", job_name)
        else:
            name = derive_job_name(self.task_name or self.default_job_base(), now or datetime.now(timezone.utc))
        request = self._render(name, self.container_arguments())
        request = apply_sm_parameters(request, self._sm_params, self.kind)  # type: ignore[attr-defined]
        return JobRequest(kind=self.kind, step=self.step, request=request, outputs=self.outputs(),
                          region=self.region)

    def _render(self, name: str, arguments: list[str]) -> dict[str, Any]:
        raise NotImplementedError
