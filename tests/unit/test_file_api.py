"""POST /v1/files, GET /v1/files/{fileId} and GET /v1/files through the DIG API's Lambda handler,
with the file records and the bucket in moto (in process), and the client side of an upload
(dig files upload) against a fake S3: the single PUT and the multipart protocol."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import boto3
import httpx
import pytest
from moto import mock_aws

from db.files import FileStore
from db.table import Table
from dig_api.dependencies import providers
from dig_api.files.service import FileService
from dig_api.files.storage import S3Files
from dig_cli.files import Declaration, Uploader, describe
from tests.aws import AUDIT, create_tables
from tests.files_harness import BUCKET
from tests.unit.test_api import assert_error, call

SHA = hashlib.sha256(b"x").hexdigest()


@pytest.fixture
def files() -> Iterator[FileStore]:
    with mock_aws():
        dynamodb = create_tables()
        s3 = boto3.client("s3", region_name="us-east-1", config=boto3.session.Config(signature_version="s3v4"))
        s3.create_bucket(Bucket=BUCKET)
        store = FileStore(Table(dynamodb, AUDIT))
        service = FileService(store, S3Files(s3, BUCKET), multipart_threshold=100, part_bytes=40)
        providers.files = lambda: service
        yield store
        providers.reset()


def declaration(**changes: Any) -> dict[str, Any]:
    return {"kind": "events", "format": "jsonl", "compression": "gzip", "sha256": SHA, "contentLength": 90, **changes}


def test_a_declared_file_gets_a_presigned_put_bound_to_its_checksum(files: FileStore) -> None:
    status, _, body = call("POST", "/v1/files", declaration())

    assert status == 201
    assert body["status"] == "AWAITING_UPLOAD"
    assert body["duplicate"] is False
    upload = body["upload"]
    assert upload["method"] == "PUT"
    url = urlparse(upload["url"])
    assert (url.hostname, url.path) == (f"{BUCKET}.s3.amazonaws.com", f"/uploads/{body['fileId']}")
    query = parse_qs(url.query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["3600"]
    # S3 refuses a body of another length or checksum than the one declared.
    assert query["X-Amz-SignedHeaders"] == ["content-length;host;x-amz-checksum-sha256"]
    assert upload["headers"] == {"x-amz-checksum-sha256": base64.b64encode(hashlib.sha256(b"x").digest()).decode()}
    record = files.get(body["fileId"])
    assert record is not None
    assert (record.client, record.contentLength, record.sha256) == ("es-loyalty", 90, SHA)


@pytest.mark.parametrize("length", [True, "90", 0])
def test_a_content_length_that_is_not_a_positive_json_number_is_refused(files: FileStore, length: object) -> None:
    status, _, body = call("POST", "/v1/files", declaration(contentLength=length))
    assert status == 422
    assert [d["field"] for d in body["error"]["details"]] == ["contentLength"]


def test_a_file_over_the_multipart_threshold_gets_one_url_per_part_and_a_completion_url(files: FileStore) -> None:
    status, _, body = call("POST", "/v1/files", declaration(contentLength=101))

    assert status == 201
    upload = body["upload"]
    assert upload["method"] == "MULTIPART"
    assert upload["partBytes"] == 40
    assert [(p["partNumber"], p["start"], p["end"]) for p in upload["parts"]] == [(1, 0, 40), (2, 40, 80), (3, 80, 101)]
    for part in upload["parts"]:
        query = parse_qs(urlparse(part["url"]).query)
        assert (query["uploadId"], query["partNumber"]) == ([upload["uploadId"]], [str(part["partNumber"])])
    completion = parse_qs(urlparse(upload["completeUrl"]).query)
    assert completion["uploadId"] == [upload["uploadId"]]
    assert "partNumber" not in completion


def test_the_same_file_declared_again_is_a_duplicate_once_it_was_uploaded(files: FileStore) -> None:
    _, _, first = call("POST", "/v1/files", declaration())
    status, _, again = call("POST", "/v1/files", declaration())
    assert status == 201
    assert again["fileId"] == first["fileId"]  # not uploaded yet: upload it (again)

    from dig_contracts.files import FileStatus

    files.advance(first["fileId"], FileStatus.VALIDATING, allowed_from={FileStatus.AWAITING_UPLOAD})
    status, _, duplicate = call("POST", "/v1/files", declaration())

    assert status == 200
    assert duplicate == {"fileId": first["fileId"], "status": "VALIDATING", "duplicate": True, "upload": None}


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"format": "csv"}, "format", "events files are JSON lines (jsonl)"),
        ({"kind": "extract", "name": "shoeSizes"}, "name", "must name an extract: memberAccounts"),
        ({"name": "memberAccounts"}, "name", "only extract files have a name"),
        ({"sha256": "ABC"}, "sha256", "String should match pattern '^[0-9a-f]{64}$'"),
        ({"contentLength": 0}, "contentLength", "Input should be greater than or equal to 1"),
        ({"compression": "zip"}, "compression", "Input should be 'gzip' or 'none'"),
    ],
)
def test_a_declaration_that_cannot_be_processed_is_refused_naming_the_field(
    files: FileStore, changes: dict[str, Any], field: str, rule: str
) -> None:
    status, _, body = call("POST", "/v1/files", declaration(**changes))

    assert status == 422
    assert_error(body, "VALIDATION_FAILED")
    [detail] = [d for d in body["error"]["details"] if d["field"] == field]
    assert detail["rule"].startswith(rule)


def test_a_file_is_shown_with_counts_and_timings_and_an_unknown_one_is_404(files: FileStore) -> None:
    _, _, declared = call("POST", "/v1/files", declaration())

    status, _, view = call("GET", f"/v1/files/{declared['fileId']}")
    assert status == 200
    assert view["status"] == "AWAITING_UPLOAD"
    assert view["counts"] == {"lines": 0, "accepted": 0, "duplicates": 0, "rejected": 0, "unprocessed": 0}
    assert view["timings"]["createdAt"]
    assert view["report"] is None

    status, _, missing = call("GET", "/v1/files/f0000")
    assert status == 404
    assert_error(missing, "NOT_FOUND")

    status, _, listed = call("GET", "/v1/files")
    assert status == 200
    assert [f["fileId"] for f in listed["files"]] == [declared["fileId"]]


# --- the client side: dig files upload -----------------------------------------------------------


class FakeS3:
    """Answers presigned requests as S3 does; keeps what it was sent."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        self.requests.append((request.method, str(request.url), dict(request.headers), body))
        if request.method == "PUT":
            return httpx.Response(200, headers={"ETag": f'"etag-{len(self.requests)}"'})
        return httpx.Response(200, text="<CompleteMultipartUploadResult/>")


def test_the_client_uploads_each_part_to_its_url_and_completes_with_the_etags(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl.gz"
    path.write_bytes(b"a" * 50)
    s3 = FakeS3()
    uploader = Uploader(
        httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500))),
        httpx.Client(transport=httpx.MockTransport(s3)),
    )
    upload = {
        "method": "MULTIPART",
        "parts": [
            {"partNumber": 1, "url": "https://s3/p1", "start": 0, "end": 20},
            {"partNumber": 2, "url": "https://s3/p2", "start": 20, "end": 50},
        ],
        "completeUrl": "https://s3/complete",
    }
    sent: list[int] = []

    uploader.upload(path, upload, sent.append)

    assert [(m, u, len(b)) for m, u, _, b in s3.requests] == [
        ("PUT", "https://s3/p1", 20),
        ("PUT", "https://s3/p2", 30),
        ("POST", "https://s3/complete", s3.requests[2][3].__len__()),
    ]
    assert s3.requests[2][3].decode() == (
        '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"etag-1"</ETag></Part>'
        '<Part><PartNumber>2</PartNumber><ETag>"etag-2"</ETag></Part></CompleteMultipartUpload>'
    )
    assert sum(sent) == 50


def test_the_client_declares_what_the_file_is_and_puts_it_with_the_signed_headers(tmp_path: Path) -> None:
    path = tmp_path / "members.csv.gz"
    path.write_bytes(b"payload")
    declared = describe(path, kind=None, name="memberAccounts", on_bytes=lambda _: None)
    assert declared == Declaration(
        "extract", "memberAccounts", "csv", "gzip", hashlib.sha256(b"payload").hexdigest(), 7
    )
    api_requests: list[Any] = []

    def api(request: httpx.Request) -> httpx.Response:
        api_requests.append(json.loads(request.read()))
        return httpx.Response(201, json={"fileId": "f1", "duplicate": False, "status": "AWAITING_UPLOAD"})

    s3 = FakeS3()
    uploader = Uploader(
        httpx.Client(base_url="https://dig", transport=httpx.MockTransport(api)),
        httpx.Client(transport=httpx.MockTransport(s3)),
    )
    uploader.declare(declared)
    uploader.upload(
        path, {"method": "PUT", "url": "https://s3/put", "headers": {"x-amz-checksum-sha256": "c2hh"}}, lambda _: None
    )

    assert api_requests == [
        {
            "kind": "extract",
            "name": "memberAccounts",
            "format": "csv",
            "compression": "gzip",
            "sha256": declared.sha256,
            "contentLength": 7,
        }
    ]
    [(method, _, headers, body)] = s3.requests
    assert (method, body, headers["x-amz-checksum-sha256"], headers["content-length"]) == (
        "PUT",
        b"payload",
        "c2hh",
        "7",
    )
