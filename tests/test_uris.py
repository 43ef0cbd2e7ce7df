"""The one Airflow-side URI parser (graphstorm_provider.uris), and that validation, staging and the
data helpers all follow it."""

from __future__ import annotations

import pytest

from graphstorm_provider.uris import UriError, parse_uri, split_s3


@pytest.mark.parametrize(
    ("uri", "bucket", "key"),
    [
        ("s3://bucket-a/a?b#c/d", "bucket-a", "a?b#c/d"),
        ("s3://bucket-a", "bucket-a", ""),
        ("s3://bucket-a/x%20y/", "bucket-a", "x%20y/"),
        ("s3://bucket-a//k", "bucket-a", "k"),
    ],
)
def test_s3_keys_keep_question_marks_hashes_and_escapes(uri, bucket, key):
    assert split_s3(uri) == (bucket, key)


@pytest.mark.parametrize(
    "uri",
    [
        "s3://bucket-a/a/../b",
        "s3://bucket-a/a/%2e%2e/b",
        "s3://bucket-a/%2E%2E",
        "file:///tmp/../etc",
        "file:///tmp/%2e%2e/etc",
        "file://host/tmp",
        "file:tmp",
        "http://x/y",
        "s3:///key",
        "bucket/key",
    ],
)
def test_bad_uris_are_refused(uri):
    with pytest.raises(UriError):
        parse_uri(uri)


def test_file_paths_are_decoded_once_and_keep_question_marks():
    assert parse_uri("file:///tmp/a%20b/c?d#e").path == "/tmp/a b/c?d#e"
    assert parse_uri("file://localhost/tmp/x").path == "/tmp/x"


def test_every_airflow_side_parser_agrees():
    from graphstorm_provider.data import storage
    from graphstorm_provider.execution.staging import StagingError, parse_uri as staging_parse
    from graphstorm_provider.jobs import TrainSpec
    from graphstorm_provider.jobs.errors import JobSpecError

    assert staging_parse("s3://bucket-a/k?v#1").key == "k?v#1"
    assert str(storage.local_path("file:///tmp/a%3Fb")) == "/tmp/a?b"
    with pytest.raises(StagingError, match="'..' segment"):
        staging_parse("s3://bucket-a/x/%2e%2e/y")
    kwargs = dict(
        image_url="img",
        role="arn:aws:iam::123456789012:role/R",
        yaml_s3="s3://bucket-a/t.yaml",
        model_artifact_s3="s3://bucket-a/m",
        graph_name="g",
        task_type="link_prediction",
    )
    assert TrainSpec(**kwargs, graph_data_s3="s3://bucket-a/g?x#y").graph_data_s3 == "s3://bucket-a/g?x#y/"
    with pytest.raises(JobSpecError, match="--graph-data-s3 must not have a '..' segment"):
        TrainSpec(**kwargs, graph_data_s3="s3://bucket-a/g/%2E%2E/other")
