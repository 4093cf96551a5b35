"""The imports bucket: uploaded lists (``uploads/<upload id>/<file name>``, uploaded through a
pre-signed URL or by the CLI); what a background run's steps hand each other
(``imports/<import id>/job.json`` and ``chunks/<n>.json``); a background dry run's job and
answer (``dry_runs/<plan id>/``); and a dry run's rejected rows too large to answer inline
(``rejected/<their SHA-256>.csv``). The bucket's lifecycle rule removes all of it after a week:
the import's own record (the imports table) is what is kept."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote


class ImportFiles:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def put(self, key: str, data: bytes) -> None:
        self._client.put_object(Bucket=self._bucket, Key=key, Body=data)

    def get(self, key: str) -> bytes | None:
        try:
            answer = self._client.get_object(Bucket=self._bucket, Key=key)
        except self._client.exceptions.NoSuchKey:
            return None
        data: bytes = answer["Body"].read()
        return data

    def exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self._bucket, Key=key)
        except self._client.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def put_json(self, key: str, document: Any) -> None:
        self.put(key, json.dumps(document, ensure_ascii=False).encode())

    def get_json(self, key: str) -> Any:
        data = self.get(key)
        if data is None:
            raise FileNotFoundError(key)
        return json.loads(data)

    def download_url(self, key: str, seconds: int, file_name: str) -> str:
        """A URL that gives the object, saved as ``file_name``, for ``seconds``."""
        disposition = f"attachment; filename*=UTF-8''{quote(file_name)}"
        url: str = self._client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self._bucket,
                "Key": key,
                "ResponseContentDisposition": disposition,
            },
            ExpiresIn=seconds,
        )
        return url

    def upload_url(self, key: str, seconds: int) -> str:
        """A URL that takes one PUT of the file, for ``seconds``."""
        url: str = self._client.generate_presigned_url(
            "put_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=seconds
        )
        return url
