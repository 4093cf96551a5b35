"""The analytics export in template.yaml: the Glue table's columns are the rows' schema, and the
pieces that carry a row from the events stream to Athena are there and wired to each other."""

from __future__ import annotations

from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from tests.conftest import TEMPLATE
from tsunagu.analytics.rows import COLUMNS, PARTITION_KEY


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml_parse(TEMPLATE.read_text("utf-8"))
    found: dict[str, Any] = parsed["Resources"]
    return found


def of_type(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in resources.items() if v["Type"] == kind}


def test_the_glue_tables_columns_are_the_rows_schema(resources: dict[str, Any]) -> None:
    (table,) = of_type(resources, "AWS::Glue::Table").values()
    table_input = table["Properties"]["TableInput"]
    columns = [(c["Name"], c["Type"]) for c in table_input["StorageDescriptor"]["Columns"]]
    assert columns == [(c.name, c.type) for c in COLUMNS]
    assert [(k["Name"], k["Type"]) for k in table_input["PartitionKeys"]] == [
        (PARTITION_KEY.name, PARTITION_KEY.type)
    ]
    # Parquet, and the partitions projected from the day (no crawler)
    serde = table_input["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"]
    assert serde.endswith("ParquetHiveSerDe")
    parameters = table_input["Parameters"]
    assert parameters["projection.enabled"] == "true"
    assert parameters[f"projection.{PARTITION_KEY.name}.type"] == "date"
    assert parameters[f"projection.{PARTITION_KEY.name}.format"] == "yyyy-MM-dd"


def test_the_delivery_stream_converts_to_parquet_with_that_table_partitioned_by_day(
    resources: dict[str, Any],
) -> None:
    ((name, stream),) = of_type(resources, "AWS::KinesisFirehose::DeliveryStream").items()
    (table_id,) = of_type(resources, "AWS::Glue::Table")
    destination = stream["Properties"]["ExtendedS3DestinationConfiguration"]
    conversion = destination["DataFormatConversionConfiguration"]
    assert conversion["Enabled"] is True
    assert "ParquetSerDe" in conversion["OutputFormatConfiguration"]["Serializer"]
    assert conversion["SchemaConfiguration"]["TableName"] == {"Ref": table_id}
    key = PARTITION_KEY.name
    assert destination["Prefix"] == f"events/{key}=!{{partitionKeyFromQuery:{key}}}/"
    assert destination["DynamicPartitioningConfiguration"]["Enabled"] is True
    (processor,) = destination["ProcessingConfiguration"]["Processors"]
    parameters = {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}
    assert parameters["MetadataExtractionQuery"] == f"{{{key}: .{key}}}"
    assert destination["ErrorOutputPrefix"].startswith("errors/")
    # The table's location is where the stream writes
    table_location = resources[table_id]["Properties"]["TableInput"]["StorageDescriptor"]
    assert table_location["Location"] == {"Fn::Sub": "s3://${AnalyticsBucket}/events/"}
    # report_events may put records on this stream and on nothing else of Firehose
    function = resources["ReportEventsFunction"]["Properties"]
    assert function["Environment"]["Variables"]["TSUNAGU_ANALYTICS_DELIVERY_STREAM"] == {
        "Ref": name
    }
    statements = [s for p in function["Policies"] for s in p.get("Statement", [])]
    firehose = [s for s in statements if str(s["Action"]).startswith("firehose:")]
    assert firehose == [
        {
            "Effect": "Allow",
            "Action": "firehose:PutRecordBatch",
            "Resource": {"Fn::GetAtt": [name, "Arn"]},
        }
    ]
    stream_source = function["Events"]["EventsStream"]["Properties"]
    assert stream_source["Stream"] == {"Fn::GetAtt": ["EventsTable", "StreamArn"]}
    assert stream_source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_the_bucket_is_private_encrypted_and_tls_only(resources: dict[str, Any]) -> None:
    bucket = resources["AnalyticsBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    policy = resources["AnalyticsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [
            {"Fn::GetAtt": ["AnalyticsBucket", "Arn"]},
            {"Fn::Sub": "${AnalyticsBucket.Arn}/*"},
        ],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Sid": "HttpsOnly",
    } in policy
    # Rows go when their events go (the events table's TTL)
    expiry = {r["Id"]: r for r in bucket["LifecycleConfiguration"]["Rules"]}
    assert expiry["events-expire-with-the-table"]["ExpirationInDays"] == {
        "Ref": "EventRetentionDays"
    }


def test_the_athena_workgroup_writes_encrypted_results_into_the_bucket(
    resources: dict[str, Any],
) -> None:
    (workgroup,) = of_type(resources, "AWS::Athena::WorkGroup").values()
    configuration = workgroup["Properties"]["WorkGroupConfiguration"]
    assert configuration["EnforceWorkGroupConfiguration"] is True
    results = configuration["ResultConfiguration"]
    assert results["OutputLocation"] == {"Fn::Sub": "s3://${AnalyticsBucket}/athena-results/"}
    assert results["EncryptionConfiguration"]["EncryptionOption"] in ("SSE_S3", "SSE_KMS")
    assert configuration["BytesScannedCutoffPerQuery"] > 0
