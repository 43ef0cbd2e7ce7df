"""An Airflow AWS connection as ``AWS_*`` environment variables for local and compose runs."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def connection_env(aws_conn_id: str | None, region: str) -> dict[str, str]:
    """Credentials, region and endpoint of an Airflow AWS connection as ``AWS_*`` variables.

    Only ever placed in a job process's (or the compose tool's) environment: never logged,
    templated, written to a file or pushed to XCom. Without a connection this is empty; when the
    connection yields no credentials the job's boto3 falls back to its usual lookup (fine for
    ``file://`` URIs).
    """
    if not aws_conn_id:
        return {}
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    env = {"AWS_REGION": region, "AWS_DEFAULT_REGION": region}
    try:
        hook = AwsBaseHook(aws_conn_id=aws_conn_id, client_type="s3", region_name=region)
        credentials = hook.get_credentials(region_name=region)
    except Exception as err:  # noqa: BLE001 - no connection/credentials: a file:// run needs no AWS
        log.warning("No AWS credentials from connection %r (%s).", aws_conn_id, type(err).__name__)
        return env
    if credentials is None:  # boto3 found no credentials anywhere
        return env
    if credentials.access_key and credentials.secret_key:
        env["AWS_ACCESS_KEY_ID"] = credentials.access_key
        env["AWS_SECRET_ACCESS_KEY"] = credentials.secret_key
    if credentials.token:
        env["AWS_SESSION_TOKEN"] = credentials.token
    endpoint_url = hook.conn_config.endpoint_url
    if endpoint_url:
        env["AWS_ENDPOINT_URL"] = endpoint_url
    return env
