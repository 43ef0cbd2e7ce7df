"""
An Airflow AWS connection as ``AWS_*`` environment variables for local and compose runs.

Also what the operators register with Airflow's secrets masker: the connection's credentials, and
the secret-looking values of a job's ``environment`` (:func:`mask_environment_values`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from graphstorm_provider.aws_env import CREDENTIAL_VARIABLES, looks_secret

if TYPE_CHECKING:
    from botocore.credentials import ReadOnlyCredentials

    from graphstorm_provider.jobs.request import JobRequest

log = logging.getLogger(__name__)


def mask_secrets(values: Iterable[str | None]) -> None:
    """
    Register ``values`` with Airflow's secrets masker, so a value that reaches a task log line shows as ``***``.

    The masker is ``airflow.sdk.log.mask_secret``: the task process and its supervisor.
    """
    from airflow.sdk.log import mask_secret

    for value in values:
        if value:
            mask_secret(value)


def mask_environment_values(sm_estimator_parameters: Any) -> None:
    """
    Register the secret-looking values of the job's ``environment`` with Airflow's secrets masker.

    ``sm_estimator_parameters`` as rendered (a dict, or the launch scripts' ``"k=v ..."`` string);
    its ``environment`` (training) or ``env`` (processing) entries whose names
    :func:`~graphstorm_provider.aws_env.looks_secret` are registered. The operators call this once
    their fields are rendered, before Airflow stores the rendered fields (the UI's rendered-template
    view) and before anything is logged: Airflow masks values under a sensitive-looking dict key by
    itself, but not inside a string nor under names outside its list (``GITHUB_CREDENTIALS``).
    Parameters that do not parse (the task fails at start, naming them) still have theirs
    registered as far as they can be found: as JSON, else every quoted value (or number) after a
    quoted secret-looking name. ``true``, ``false`` and empty values are not registered (the
    masker would hide every such word in the task log).
    """
    from graphstorm_provider.jobs.sm_params import normalise_sm_parameters

    try:
        params: Any = normalise_sm_parameters(sm_estimator_parameters)
    except (ValueError, TypeError):
        params = sm_estimator_parameters
        if isinstance(params, str):
            with contextlib.suppress(ValueError):
                params = json.loads(params)
    values: list[str] = []
    if isinstance(params, Mapping):
        values += _environment_secrets(params)
    if isinstance(sm_estimator_parameters, str):
        values += _quoted_secrets(sm_estimator_parameters)
    mask_secrets(value for value in values if value.strip() and value.lower() not in ("true", "false"))


# A quoted name and the quoted value or number after it ('DB_PASSWORD': 'x', "API_TOKEN":"y", 'N': 12).
_QUOTED_ENTRY = re.compile(
    r"""(["'])([A-Za-z_][A-Za-z0-9_]*)\1\s*:\s*(?:(["'])((?:\\.|(?!\3)[^\\])*)\3|(-?[0-9][0-9.eE+-]*))"""
)


def _quoted_secrets(text: str) -> list[str]:
    """Return the values of secret-looking names in ``text``, as written (for what does not parse)."""
    return [
        match.group(4) if match.group(3) else match.group(5)
        for match in _QUOTED_ENTRY.finditer(text)
        if looks_secret(match.group(2), match.group(4))
    ]


def _environment_secrets(params: Mapping[Any, Any]) -> list[str]:
    """Return the secret-looking values of ``params``' ``environment`` / ``env`` (a dict or a string spelling one)."""
    from graphstorm_provider.jobs.sm_params import rendered_literal

    values: list[str] = []
    for key in ("environment", "env"):
        environment = params.get(key)
        if isinstance(environment, str):  # a rendered dict param: "{'DB_PASSWORD': '...'}"
            values += _quoted_secrets(environment)
            environment = rendered_literal(environment)
        if isinstance(environment, Mapping):
            values += [
                str(value)
                for name, value in environment.items()
                if isinstance(name, str)
                and looks_secret(name, value)
                and isinstance(value, (str, int, float))
                and not isinstance(value, bool)
            ]
    return values


def masked_sm_parameters(sm_estimator_parameters: Any) -> Any:
    """
    Return the rendered ``sm_estimator_parameters`` fit to store, their secret values registered with the masker.

    Numbers under secret-looking names become text first (:func:`secret_numbers_as_text`: the masker
    hides text only), then :func:`mask_environment_values` registers the values. What both operators'
    ``_do_render_template_fields`` do; the same object comes back when nothing changed.
    """
    as_text = secret_numbers_as_text(sm_estimator_parameters)
    mask_environment_values(as_text)
    return as_text


def secret_numbers_as_text(sm_estimator_parameters: Any) -> Any:
    """
    Return ``sm_estimator_parameters`` with the numbers under secret-looking ``environment`` / ``env`` names as text.

    Airflow's masker hides text only, and the rendered-template view shows a number as it is; the
    spec makes such numbers text anyway (``jobs/sm_fields.py``), so the job is the same. Anything
    else, a string included, is returned as it is (the same object when nothing changes).
    """
    if not isinstance(sm_estimator_parameters, Mapping):
        return sm_estimator_parameters
    changed = dict(sm_estimator_parameters)
    for key in ("environment", "env"):
        environment = changed.get(key)
        if isinstance(environment, Mapping):
            changed[key] = {
                name: str(value)
                if isinstance(name, str)
                and looks_secret(name)
                and isinstance(value, (int, float))
                and not isinstance(value, bool)
                else value
                for name, value in environment.items()
            }
    return sm_estimator_parameters if changed == sm_estimator_parameters else changed


def touches_aws(job: JobRequest) -> bool:
    """
    Whether the job reaches AWS: it runs on SageMaker (``ml.*``) or reads or writes ``s3://``.

    Only such a job looks the Airflow AWS connection up, so a ``file://`` local job logs no
    warning about a connection or credentials it does not need.
    """
    return not job.is_local or "s3://" in json.dumps(job.request, default=str)


def connection_env(aws_conn_id: str | None, region: str) -> dict[str, str]:
    """
    Credentials, region and endpoint of an Airflow AWS connection as ``AWS_*`` variables.

    Only ever placed in a job process's (or the compose tool's) environment: never logged,
    templated, written to a file or pushed to XCom; the key, secret and token are also registered
    with Airflow's secrets masker. Without a connection this is empty; when the
    connection yields no credentials the job's boto3 falls back to its usual lookup (fine for
    ``file://`` URIs).

    The credentials are one whole set: key and secret, plus ``AWS_SESSION_TOKEN`` exactly when
    the connection's credentials have a token. The local backend gives the job this set alone
    (``execution/local.py`` ``with_caller_credentials``): none of the worker's own credential
    variables (a session token, a profile, a role, ...) join it.
    """
    if not aws_conn_id:
        return {}
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    env = {"AWS_REGION": region, "AWS_DEFAULT_REGION": region}
    try:
        hook = AwsBaseHook(aws_conn_id=aws_conn_id, client_type="s3", region_name=region)
        # Optional although the hook is annotated never to return None: the check below stays
        # (a hook double or another provider version may return None).
        credentials: ReadOnlyCredentials | None = hook.get_credentials(region_name=region)
    except Exception as err:
        log.warning("No AWS credentials from connection %r (%s).", aws_conn_id, type(err).__name__)
        return env
    if credentials is None:  # boto3 found no credentials anywhere
        return env
    if credentials.access_key and credentials.secret_key:
        env["AWS_ACCESS_KEY_ID"] = credentials.access_key
        env["AWS_SECRET_ACCESS_KEY"] = credentials.secret_key
        if credentials.token:  # a token only ever goes with its own key
            env["AWS_SESSION_TOKEN"] = credentials.token
    mask_secrets(env.get(name) for name in CREDENTIAL_VARIABLES)
    endpoint_url = hook.conn_config.endpoint_url
    if endpoint_url:
        env["AWS_ENDPOINT_URL"] = endpoint_url
    return env
