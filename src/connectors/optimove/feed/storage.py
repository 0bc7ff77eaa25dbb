"""The batch channel's S3: the day's files into Optimove's bucket (streamed as multipart uploads,
SSE-KMS when the bucket asks for it), the fingerprint state under DIG's files bucket, and an
extract's validated rows read back from its parts.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator, Mapping
from typing import Any

from connectors.optimove.feed.build import Fingerprints

UPLOAD_PART_BYTES = 8 * 1024 * 1024  # S3's multipart minimum is 5 MiB a part (the last excepted)


class S3Sink:
    def __init__(self, client: Any, bucket: str, kms_key_arn: str | None = None) -> None:
        self._client, self._bucket = client, bucket
        self._encryption: dict[str, str] = (
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_arn} if kms_key_arn else {}
        )

    def open(self, key: str) -> S3PartWriter:
        return S3PartWriter(self._client, self._bucket, key, self._encryption)

    def put(self, key: str, body: bytes) -> None:
        self._client.put_object(Bucket=self._bucket, Key=key, Body=body, **self._encryption)


class S3PartWriter:
    """One object written as it is produced: a single PUT when it stays small, else a multipart
    upload, aborted if anything fails (so no half object is ever visible)."""

    def __init__(self, client: Any, bucket: str, key: str, encryption: dict[str, str]) -> None:
        self._client, self._bucket, self._key, self._encryption = client, bucket, key, encryption
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    def write(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= UPLOAD_PART_BYTES:
            self._send_part()

    def close(self) -> None:
        try:
            if self._upload_id is None:
                self._client.put_object(
                    Bucket=self._bucket, Key=self._key, Body=bytes(self._buffer), **self._encryption
                )
                return
            if self._buffer:
                self._send_part()
            self._client.complete_multipart_upload(
                Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
            )
        except Exception:
            self._abort()
            raise

    def _send_part(self) -> None:
        try:
            if self._upload_id is None:
                started = self._client.create_multipart_upload(Bucket=self._bucket, Key=self._key, **self._encryption)
                self._upload_id = started["UploadId"]
            number = len(self._parts) + 1
            answer = self._client.upload_part(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=bytes(self._buffer),
            )
            self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            self._buffer.clear()
        except Exception:
            self._abort()
            raise

    def _abort(self) -> None:
        if self._upload_id is not None:
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=self._upload_id)
            self._upload_id = None


class S3FingerprintStore:
    """``<prefix><data set>/<day>/<partition>.gz``: lines of ``key<TAB>fingerprint (hex)``. The days
    a data set has are listed once per store (one build)."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self._client, self._bucket, self._prefix = client, bucket, prefix
        self._days: dict[str, list[str]] = {}

    def _key(self, data_set: str, day: str, partition: int) -> str:
        return f"{self._prefix}{data_set}/{day}/{partition:05d}.gz"

    def days(self, data_set: str) -> list[str]:
        if data_set not in self._days:
            found: list[str] = []
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self._bucket, Prefix=f"{self._prefix}{data_set}/", Delimiter="/"):
                found.extend(p["Prefix"].rstrip("/").rsplit("/", 1)[-1] for p in page.get("CommonPrefixes", []))
            self._days[data_set] = sorted(found)
        return self._days[data_set]

    def before(self, data_set: str, day: str, partition: int) -> Fingerprints:
        earlier = [d for d in self.days(data_set) if d < day]
        if not earlier:
            return {}
        try:
            body = self._client.get_object(Bucket=self._bucket, Key=self._key(data_set, earlier[-1], partition))["Body"]
        except self._client.exceptions.NoSuchKey:
            return {}
        known: Fingerprints = {}
        with gzip.open(body, "rt", encoding="utf-8") as lines:
            for line in lines:
                key, _, fingerprint = line.rstrip("\n").rpartition("\t")
                known[key] = bytes.fromhex(fingerprint)
        return known

    def save(self, data_set: str, day: str, partition: int, fingerprints: Fingerprints) -> None:
        text = io.StringIO()
        for key in sorted(fingerprints):
            text.write(f"{key}\t{fingerprints[key].hex()}\n")
        body = gzip.compress(text.getvalue().encode(), mtime=0)
        self._client.put_object(Bucket=self._bucket, Key=self._key(data_set, day, partition), Body=body)


def extract_rows(client: Any, bucket: str, parts: list[str]) -> Iterator[Mapping[str, Any]]:
    """An extract's validated rows, part after part (gzip JSON lines), streamed."""
    for key in parts:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        with gzip.open(body, "rt", encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    yield json.loads(line)
