"""
The environment variable names the provider treats specially: AWS credentials, and secrets.

The operators, the job specs, the local and compose backends and the compose CLI all take their
lists from here. Three nested lists of AWS names, and :func:`looks_secret` for any name (other
secret-looking variables, ``DB_PASSWORD``, may be in a request's ``Environment``: SageMaker needs
their values; what shows a request shows ``jobs.request.printable_request``, with :data:`REDACTED`
values, and a SageMaker job with such names logs a warning, ``jobs.request.warn_secret_environment``):

* :data:`CREDENTIAL_VARIABLES`: what an AWS connection's credentials become for a job run here
  (``operators/connection.py``): registered with Airflow's secrets masker, and referenced only by
  name in a compose file (``execution/compose.py``), the values staying in the compose process's
  environment.
* :data:`SECRET_CREDENTIAL_VARIABLES`: those plus botocore's older name for a session token; a
  request's ``Environment`` may not carry them (``jobs/sm_fields.py``): SageMaker stores the
  request and returns it from ``Describe*Job``.
* :data:`IDENTITY_VARIABLES`: every variable that carries or selects an identity (boto3's
  credential chain and the AWS SDKs and CLI read the same names): keys, session tokens, their expiry
  and account, a profile, an assumed role or web identity, a container's credentials endpoint and
  its token, a service bearer token. A local job's credentials come from one source
  (``execution/local.py`` ``with_caller_credentials``): when the caller sets any of these, none of
  the worker's own join them. Settings that select no identity are not here: region, endpoints,
  retries, CA bundle, and where the shared config and credentials files are (with keys in the
  environment, boto3 reads no credentials from those files).
"""

from __future__ import annotations

import re

CREDENTIAL_VARIABLES: tuple[str, ...] = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
SECRET_CREDENTIAL_VARIABLES: tuple[str, ...] = (*CREDENTIAL_VARIABLES, "AWS_SECURITY_TOKEN")
IDENTITY_VARIABLES: tuple[str, ...] = (
    *SECRET_CREDENTIAL_VARIABLES,
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_ACCOUNT_ID",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_BEARER_TOKEN_BEDROCK",
)

# What in a variable's name says its value is a secret (DB_PASSWORD, API_TOKEN, GITHUB_CREDENTIALS, ...):
# one of these words, plural too, ending the name or followed by "_" (not TOKENIZERS_PARALLELISM).
# Nothing is required before it, so GITHUBTOKEN counts too.
_SECRET_WORD = re.compile(
    r"(?:SECRET|TOKEN|PASSWORD|PASSWD|PASSPHRASE|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL|API_KEY|APIKEY)S?(?:_|$)"
    # PWD as a word of its own (MYSQL_PWD, PWD_DB; not the shell's PWD), AUTH ending the name (BASIC_AUTH).
    r"|(?:^|_)PWD(?:_|$)|AUTH$",
    re.I,
)
# The shell's variables that the words above would take for secrets.
_NOT_SECRET_NAMES = frozenset({"PWD", "OLDPWD"})
# A URL carrying a password (postgres://user:password@host/db): a secret whatever its variable's name.
_URL_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/:@\s]*:[^/@\s]+@")
# What says the variable does not hold the secret but refers to one (DB_PASSWORD_SECRET_ARN,
# AWS_WEB_IDENTITY_TOKEN_FILE): its last word ...
_REFERENCE_WORD = re.compile(r"_(?:ARN|NAME|ID|FILE|PATH|DIR|REGION|URL|URI)$", re.I)
# ... or is a setting about secrets (MAX_TOKENS, PASSWORD_MIN_LENGTH, HF_HUB_DISABLE_TOKEN): any of its words.
_SETTING_WORD = re.compile(
    r"(?:^|_)(?:MAX|MIN|NUM|LENGTH|LEN|COUNT|SIZE|LIMIT|DISABLE|DISABLED|ENABLE|ENABLED|TIMEOUT|TTL|EXPIRY|EXPIRATION)"
    r"(?:_|$)",
    re.I,
)
# What a file, a printed request (`--dry-run`) or Airflow's masker shows instead of such a value.
REDACTED = "***"


def looks_secret(name: str, value: object = None) -> bool:
    """
    Tell whether variable ``name`` holds a secret by its name, or by its ``value`` when given.

    The AWS credential variables, and a name with a secret word (``SECRET``, ``TOKEN``,
    ``PASSWORD``, ``PASSWD``, ``PASSPHRASE``, ``ACCESS_KEY``, ``PRIVATE_KEY``, ``CREDENTIAL``,
    ``API_KEY``, ``APIKEY``, plural too) followed by ``_`` or ending it: ``DB_PASSWORD``,
    ``GITHUB_CREDENTIALS``, ``GS_TOKEN``, not ``TOKENIZERS_PARALLELISM``; ``PWD`` as a word
    (``MYSQL_PWD``; not the shell's ``PWD``) and ``AUTH`` ending the name (``BASIC_AUTH``). A value
    that is a URL with a password (``postgres://user:password@host/db``) under any name. Not a name that refers to a secret, ending in
    ``_ARN``, ``_NAME``, ``_ID``, ``_FILE``, ``_PATH``, ``_DIR``, ``_REGION``, ``_URL``, ``_URI``
    (``DB_PASSWORD_SECRET_ARN``), nor a setting about one, with a word such as ``MAX``, ``MIN``,
    ``LENGTH``, ``DISABLE``, ``TIMEOUT`` (``MAX_TOKENS``, ``PASSWORD_MIN_LENGTH``).

    Such values are passed to a job by name or as variables only, never written into a file
    (a compose file, the emulated ``processingjobconfig.json``) nor printed (``--dry-run``), and the
    operators register them with Airflow's secrets masker (``operators/connection.py``).
    """
    if name in SECRET_CREDENTIAL_VARIABLES:
        return True
    if isinstance(value, str) and _URL_WITH_PASSWORD.search(value):
        return True
    if name.upper() in _NOT_SECRET_NAMES:
        return False
    return bool(_SECRET_WORD.search(name) and not _REFERENCE_WORD.search(name) and not _SETTING_WORD.search(name))
