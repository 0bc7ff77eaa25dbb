"""The files bucket: presigned uploads and report links, streamed reads by byte range, writes.

Every call goes through boto3; presigned requests are signed SigV4 with the function's own
credentials, so a URL lasts at most as long as those (a Lambda role's session: hours) and at most
``expires_in``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from db.records import iso, utc_now
from dig_contracts.files import MULTIPART_PART_BYTES, MULTIPART_THRESHOLD_BYTES

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

READ_PIECE_BYTES = 1024 * 1024
WRITE_PART_BYTES = 16 * 1024 * 1024  # S3 takes parts of 5 MiB or more (the last one excepted)


@dataclass(frozen=True)
class Upload:
    method: str  # PUT, or MULTIPART: PUT each part to its URL, then POST the part list to complete_url
    url: str | None
    headers: dict[str, str]
    expires_at: str
    upload_id: str | None = None
    part_bytes: int | None = None
    parts: tuple[dict[str, Any], ...] = ()
    complete_url: str | None = None

    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = {"method": self.method, "headers": self.headers, "expiresAt": self.expires_at}
        if self.url is not None:
            document["url"] = self.url
        if self.method == "MULTIPART":
            document |= {
                "uploadId": self.upload_id,
                "partBytes": self.part_bytes,
                "parts": list(self.parts),
                "completeUrl": self.complete_url,
            }
        return document


def part_count(length: int, part_bytes: int = MULTIPART_PART_BYTES) -> int:
    return max(1, math.ceil(length / part_bytes))


class S3Files:
    def __init__(self, client: S3Client, bucket: str, *, clock: Any = utc_now) -> None:
        self.client = client
        self.bucket = bucket
        self._clock = clock

    # --- presigned requests -------------------------------------------------------------------

    def presign_upload(
        self,
        key: str,
        *,
        sha256_b64: str,
        length: int,
        expires_in: int,
        threshold: int = MULTIPART_THRESHOLD_BYTES,
        part_bytes: int = MULTIPART_PART_BYTES,
    ) -> Upload:
        expires_at = iso(self._clock() + timedelta(seconds=expires_in))
        if length <= threshold:
            # The checksum is part of the signed request: S3 refuses a body that does not match it.
            params = {"Bucket": self.bucket, "Key": key, "ChecksumSHA256": sha256_b64, "ContentLength": length}
            url = self.client.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_in)
            return Upload("PUT", url, {"x-amz-checksum-sha256": sha256_b64}, expires_at)
        upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        parts = []
        for number in range(1, part_count(length, part_bytes) + 1):
            start = (number - 1) * part_bytes
            params = {"Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": number}
            parts.append(
                {
                    "partNumber": number,
                    "url": self.client.generate_presigned_url("upload_part", Params=params, ExpiresIn=expires_in),
                    "start": start,
                    "end": min(start + part_bytes, length),
                }
            )
        complete = self.client.generate_presigned_url(
            "complete_multipart_upload",
            Params={"Bucket": self.bucket, "Key": key, "UploadId": upload_id},
            ExpiresIn=expires_in,
        )
        return Upload("MULTIPART", None, {}, expires_at, upload_id, part_bytes, tuple(parts), complete)

    def presign_download(self, key: str, expires_in: int) -> tuple[str, str]:
        url = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
        )
        return url, iso(self._clock() + timedelta(seconds=expires_in))

    # --- reading --------------------------------------------------------------------------------

    def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def stream(self, key: str, start: int | None = None, end: int | None = None) -> Iterator[bytes]:
        """The object's bytes [start, end), in pieces of about a megabyte."""
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if start is not None and end is not None:
            if end <= start:
                return
            request["Range"] = f"bytes={start}-{end - 1}"
        body = self.client.get_object(**request)["Body"]
        try:
            yield from body.iter_chunks(READ_PIECE_BYTES)
        finally:
            body.close()

    def read_json(self, key: str) -> Any:
        return json.loads(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def keys(self, prefix: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"]

    # --- writing --------------------------------------------------------------------------------

    def put(self, key: str, body: bytes, content_type: str = "application/json") -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def put_json(self, key: str, document: Any) -> None:
        self.put(key, json.dumps(document, separators=(",", ":")).encode())

    def writer(self, key: str) -> StreamWriter:
        return StreamWriter(self.client, self.bucket, key)

    def now(self) -> datetime:
        return self._clock()


class StreamWriter:
    """Writes an object of any size from pieces, holding at most one part in memory (multipart)."""

    def __init__(self, client: S3Client, bucket: str, key: str) -> None:
        self._client, self._bucket, self._key = client, bucket, key
        self._buffer = bytearray()
        self._parts: list[dict[str, Any]] = []
        self._upload_id: str | None = None
        self.size = 0

    def write(self, piece: bytes) -> None:
        self._buffer += piece
        self.size += len(piece)
        if len(self._buffer) >= WRITE_PART_BYTES:
            self._flush_part()

    def _flush_part(self) -> None:
        if self._upload_id is None:
            self._upload_id = self._client.create_multipart_upload(Bucket=self._bucket, Key=self._key)["UploadId"]
        number = len(self._parts) + 1
        answer = self._client.upload_part(
            Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=bytes(self._buffer)
        )
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        self._buffer.clear()

    def close(self) -> None:
        if self._upload_id is None:
            self._client.put_object(Bucket=self._bucket, Key=self._key, Body=bytes(self._buffer))
            return
        if self._buffer:
            self._flush_part()
        self._client.complete_multipart_upload(
            Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
        )

    def abort(self) -> None:
        if self._upload_id is not None:
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=self._upload_id)
