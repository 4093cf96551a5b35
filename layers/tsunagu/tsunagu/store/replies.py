"""Received replies as SES's receipt rule stored them in S3: read whole, or not at all."""

from __future__ import annotations

from typing import Any

from tsunagu.mail.replies import MessageMissing, MessageTooLarge

_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


class S3RawMessages:
    """The receipt rule's S3 action stores a message at ``<prefix><SES message id>``."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix

    def _key(self, ses_message_id: str) -> str:
        return f"{self._prefix}{ses_message_id}"

    def reference(self, ses_message_id: str) -> str:
        return f"s3://{self._bucket}/{self._key(ses_message_id)}"

    def read(self, ses_message_id: str, max_bytes: int) -> bytes:
        try:
            # Its size first: a message too large to read is never downloaded
            head = self._client.head_object(Bucket=self._bucket, Key=self._key(ses_message_id))
            size = int(head.get("ContentLength") or 0)
            if size > max_bytes:
                raise MessageTooLarge(size)
            answer = self._client.get_object(Bucket=self._bucket, Key=self._key(ses_message_id))
        except MessageTooLarge:
            raise
        except Exception as error:  # botocore's ClientError, without importing botocore here
            code = str((getattr(error, "response", None) or {}).get("Error", {}).get("Code", ""))
            if code in _MISSING:
                raise MessageMissing(ses_message_id) from error
            raise  # throttled, unreachable: Lambda's retry reads it again
        data: bytes = answer["Body"].read(max_bytes + 1)
        if len(data) > max_bytes:
            raise MessageTooLarge(len(data))
        return data
