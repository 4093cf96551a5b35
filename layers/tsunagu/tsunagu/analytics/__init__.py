"""Events for SQL: one flat row per stored event, delivered to S3 as Parquet (Athena in AWS,
DuckDB on the local runtime). ``rows`` is the schema and the flattening, ``delivery`` the
batching to Firehose, ``query`` the local SQL over the files."""
