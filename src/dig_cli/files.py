"""``dig files``: upload a batch file as ES Loyalty would (declare, upload straight to S3, wait for the
summary), follow files, and start a file's processing again.

``upload`` talks to the DIG API like any client (a bearer token: ``--token``, ``DIG_API_TOKEN``, or one
minted for the local stack or from the stack's signing key); ``show``, ``list`` and ``retry`` read the
file records and start executions with the operator's AWS credentials, like the other commands.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from xml.sax.saxutils import escape

import httpx
import typer
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from dig_cli.console import console, errors, styled
from dig_cli.operate import Local, LocalUrl, Region, Stack
from dig_cli.target import Target, resolve
from dig_contracts.files import FileStatus, report_key, results_prefix, upload_key

files_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Batch files: upload, follow, retry.")
READ_BYTES = 1024 * 1024
REPORT_ROWS_SHOWN = 20
FINAL = {s.value for s in FileStatus if s.final}


@dataclass(frozen=True)
class Declaration:
    kind: str
    name: str | None
    format: str
    compression: str
    sha256: str
    length: int

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": self.kind,
            "format": self.format,
            "compression": self.compression,
            "sha256": self.sha256,
            "contentLength": self.length,
        }
        if self.name:
            body["name"] = self.name
        return body


def describe(path: Path, *, kind: str | None, name: str | None, on_bytes: Callable[[int], None]) -> Declaration:
    """What to declare for ``path``: format and compression from its suffixes, its SHA-256 and size."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = "gzip" if suffixes[-1:] == [".gz"] else "none"
    base = suffixes[-2] if compression == "gzip" and len(suffixes) >= 2 else (suffixes[-1] if suffixes else "")
    file_format = "csv" if base == ".csv" else "jsonl"
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as source:
        while piece := source.read(READ_BYTES):
            digest.update(piece)
            size += len(piece)
            on_bytes(len(piece))
    return Declaration(
        kind or ("extract" if name else "events"), name, file_format, compression, digest.hexdigest(), size
    )


def _pieces(path: Path, start: int, end: int, on_bytes: Callable[[int], None]) -> Iterator[bytes]:
    with path.open("rb") as source:
        source.seek(start)
        left = end - start
        while left > 0:
            piece = source.read(min(READ_BYTES, left))
            if not piece:
                return
            left -= len(piece)
            on_bytes(len(piece))
            yield piece


class Uploader:
    """The client side of the flow; ``api`` is an httpx client on the DIG API (authenticated),
    ``storage`` one for S3's presigned URLs (no credentials: the URL is the permission)."""

    def __init__(self, api: httpx.Client, storage: httpx.Client) -> None:
        self.api = api
        self.storage = storage

    def declare(self, declaration: Declaration) -> dict[str, Any]:
        answer = self.api.post("/v1/files", json=declaration.body())
        if answer.status_code not in (200, 201):
            raise UploadRefused(_error_text(answer))
        return dict(answer.json())

    def upload(self, path: Path, upload: dict[str, Any], on_bytes: Callable[[int], None]) -> None:
        size = path.stat().st_size
        if upload["method"] == "PUT":
            headers = {**upload["headers"], "Content-Length": str(size)}
            answer = self.storage.put(upload["url"], content=_pieces(path, 0, size, on_bytes), headers=headers)
            if answer.status_code != 200:
                raise UploadRefused(f"S3 refused the upload: {answer.status_code} {answer.text[:300]}")
            return
        etags = []
        for part in upload["parts"]:
            length = part["end"] - part["start"]
            answer = self.storage.put(
                part["url"],
                content=_pieces(path, part["start"], part["end"], on_bytes),
                headers={"Content-Length": str(length)},
            )
            if answer.status_code != 200:
                raise UploadRefused(f"S3 refused part {part['partNumber']}: {answer.status_code} {answer.text[:300]}")
            etags.append((part["partNumber"], answer.headers["ETag"]))
        document = "".join(
            f"<Part><PartNumber>{number}</PartNumber><ETag>{escape(etag)}</ETag></Part>" for number, etag in etags
        )
        answer = self.storage.post(
            upload["completeUrl"], content=f"<CompleteMultipartUpload>{document}</CompleteMultipartUpload>".encode()
        )
        # S3 may answer 200 with an error document when completing fails late.
        if answer.status_code != 200 or "<Error>" in answer.text:
            raise UploadRefused(f"S3 did not complete the upload: {answer.status_code} {answer.text[:300]}")

    def status(self, file_id: str) -> dict[str, Any]:
        answer = self.api.get(f"/v1/files/{file_id}")
        if answer.status_code != 200:
            raise UploadRefused(_error_text(answer))
        return dict(answer.json())

    def wait(
        self, file_id: str, timeout: float, on_progress: Callable[[dict[str, Any]], None], interval: float = 1.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            view = self.status(file_id)
            on_progress(view)
            if view["status"] in FINAL or time.monotonic() >= deadline:
                return view
            time.sleep(interval)


class UploadRefused(Exception):
    pass


def _error_text(answer: httpx.Response) -> str:
    try:
        error = answer.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"{answer.status_code} {answer.text[:300]}"
    details = "; ".join(f"{d['field']}: {d['rule']}" for d in error.get("details", []))
    return f"{answer.status_code} {error['code']}: {error['message']}" + (f" ({details})" if details else "")


# --- commands ------------------------------------------------------------------------------------


@files_app.command("upload")
def upload_command(
    path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The file (.jsonl, .csv, .gz)")
    ],
    kind: Annotated[str | None, typer.Option(help="events or extract (default: extract when --name is given)")] = None,
    name: Annotated[str | None, typer.Option(help="The extract's name, e.g. memberAccounts")] = None,
    wait: Annotated[bool, typer.Option(help="Wait for processing and print the summary")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the summary")] = 3600,
    token: Annotated[str | None, typer.Option(envvar="DIG_API_TOKEN", help="Bearer token (default: minted)")] = None,
    stack: Stack = None,
    region: Region = None,
    local: Local = False,
    local_url: LocalUrl = None,
) -> None:
    """Declare PATH, upload it straight to S3, wait, and print the summary (exit 1 unless COMPLETED)."""
    target = resolve(stack=stack, region=region, local=local, local_url=local_url)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=console
    ) as progress:
        hashing = progress.add_task("checksum", total=path.stat().st_size)
        declaration = describe(path, kind=kind, name=name, on_bytes=lambda n: progress.advance(hashing, n))
    with _clients(target, token) as (api, storage):
        uploader = Uploader(api, storage)
        try:
            declared = uploader.declare(declaration)
        except UploadRefused as error:
            errors.print(f"dig: the DIG API refused the file: {error}")
            raise typer.Exit(2) from None
        file_id = declared["fileId"]
        if declared["duplicate"]:
            console.print(f"{path.name} was declared before as {file_id} ({declared['status']}): nothing to upload.")
        else:
            with Progress(
                TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=console
            ) as progress:
                sending = progress.add_task(f"upload {file_id}", total=declaration.length)
                uploader.upload(path, declared["upload"], lambda n: progress.advance(sending, n))
        if not wait:
            console.print(f"Uploaded; follow it with: dig files show {file_id} {target.where()}")
            return
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console) as progress:
            task = progress.add_task("processing", total=None)

            def show(view: dict[str, Any]) -> None:
                done = view.get("progress") or {}
                progress.update(
                    task, description=view["status"], total=done.get("chunks"), completed=done.get("chunksDone", 0)
                )

            view = uploader.wait(file_id, timeout, show)
        report = httpx.get(view["report"]["url"], timeout=30).text if view.get("report") else None
    render(view, report)
    if view["status"] != FileStatus.COMPLETED:
        raise typer.Exit(1)


@files_app.command("show")
def show_command(
    file_id: Annotated[str, typer.Argument(help="The fileId POST /v1/files answered")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    stack: Stack = None,
    region: Region = None,
    local: Local = False,
    local_url: LocalUrl = None,
) -> None:
    """A file's status, counts, timings and first rejected lines."""
    target = resolve(stack=stack, region=region, local=local, local_url=local_url)
    record = _record(target, file_id)
    view = json.loads(record.model_dump_json())
    if as_json:
        print(json.dumps(view))
        return
    report = None
    if record.counts.rejected and target.files_bucket:
        s3 = target.client("s3")
        report = s3.get_object(Bucket=target.files_bucket, Key=report_key(file_id))["Body"].read().decode()
    render(view, report)


@files_app.command("list")
def list_command(
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    stack: Stack = None,
    region: Region = None,
    local: Local = False,
    local_url: LocalUrl = None,
) -> None:
    """Recent files, newest first."""
    target = resolve(stack=stack, region=region, local=local, local_url=local_url)
    table = Table(title="Recent batch files")
    for column in ("created", "fileId", "kind", "name", "status", "lines", "accepted", "dup", "rejected", "failure"):
        table.add_column(column, overflow="fold")
    for record in _store(target).recent(limit):
        counts = record.counts
        table.add_row(
            record.createdAt,
            record.fileId,
            record.kind,
            record.name or "",
            record.status.value,
            str(counts.lines),
            str(counts.accepted),
            str(counts.duplicates),
            str(counts.rejected),
            record.failureCode or "",
        )
    console.print(table)


@files_app.command("retry")
def retry_command(
    file_id: Annotated[str, typer.Argument(help="A file that FAILED, or that stopped half-way")],
    stack: Stack = None,
    region: Region = None,
    local: Local = False,
    local_url: LocalUrl = None,
) -> None:
    """Process the file again, from its upload: every line it got accepted stays accepted, nothing is
    published twice, and the counts and report are made again."""
    target = resolve(stack=stack, region=region, local=local, local_url=local_url)
    record = _record(target, file_id)
    if record.status in (FileStatus.AWAITING_UPLOAD, FileStatus.COMPLETED, FileStatus.COMPLETED_WITH_ERRORS):
        errors.print(f"dig: {file_id} is {record.status.value}: nothing to retry")
        raise typer.Exit(2)
    execution = {
        "detail": {"bucket": {"name": target.files_bucket}, "object": {"key": upload_key(file_id)}},
        "rerun": True,
    }
    if target.local:
        target.sqs().send_message(QueueUrl=target.file_arrivals_queue, MessageBody=json.dumps(execution))
    else:
        target.client("stepfunctions").start_execution(
            stateMachineArn=target.files_state_machine,
            name=f"retry-{file_id}-{int(time.time())}",
            input=json.dumps(execution),
        )
    console.print(f"Started {file_id} again; follow it with: dig files show {file_id} {target.where()}")


def file_messages(target: Target, file_id: str) -> Iterator[tuple[int, str]]:
    """(line, messageId) for each line of an events file that became (or was) a message, in line order."""
    s3 = target.client("s3")
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=target.files_bucket, Prefix=results_prefix(file_id)
    ):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    for key in sorted(keys):
        result = json.loads(s3.get_object(Bucket=target.files_bucket, Key=key)["Body"].read())
        for line, message_id, _ in result["messages"]:
            yield line, message_id


# --- output --------------------------------------------------------------------------------------


def render(view: dict[str, Any], report: str | None) -> None:
    counts = view["counts"]
    colour = {"COMPLETED": "green", "COMPLETED_WITH_ERRORS": "yellow", "FAILED": "red"}.get(view["status"], "white")
    console.print(
        styled(
            (view["fileId"], "bold"),
            f" ({view['kind']}{' ' + view['name'] if view.get('name') else ''}): ",
            (view["status"], colour),
        )
    )
    console.print(
        f"  lines {counts['lines']}  accepted {counts['accepted']}  duplicates {counts['duplicates']}  "
        f"rejected {counts['rejected']}  unprocessed {counts['unprocessed']}"
    )
    timings = view.get("timings") or view
    if timings.get("completedAt"):
        seconds = timings.get("seconds")
        console.print(
            f"  uploaded {timings.get('uploadedAt')}, completed {timings['completedAt']}"
            + (f" ({seconds} s)" if seconds is not None else "")
        )
    failure = view.get("failure") or (
        {"code": view["failureCode"], "message": view.get("failureMessage")} if view.get("failureCode") else None
    )
    if failure:
        console.print(styled("  ", (failure["code"], "red"), f": {failure['message']}"))
    if report:
        rows = list(csv.reader(io.StringIO(report)))[1:]
        table = Table(title=f"Rejected lines ({len(rows)}; first {min(len(rows), REPORT_ROWS_SHOWN)} shown)")
        for column in ("line", "id", "code", "field", "rule"):
            table.add_column(column, overflow="fold")
        for row in rows[:REPORT_ROWS_SHOWN]:
            table.add_row(*row)
        console.print(table)


# --- plumbing ------------------------------------------------------------------------------------


def _record(target: Target, file_id: str) -> Any:
    record = _store(target).get(file_id)
    if record is None:
        errors.print(f"dig: no file {file_id}")
        raise typer.Exit(1)
    return record


def _store(target: Target) -> Any:
    from db.files import FileStore
    from db.table import Table as DynamoTable

    return FileStore(DynamoTable(target.dynamodb(), target.audit_table))


class _clients:
    """The API client (authenticated) and a plain one for presigned URLs, closed together."""

    def __init__(self, target: Target, token: str | None) -> None:
        if not target.api_url:
            raise typer.BadParameter("the stack has no ApiUrl output")
        auth: Any = None
        headers = {}
        bearer = token or _mint(target)
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        else:
            auth = _SigV4(target)
        self.api = httpx.Client(base_url=target.api_url.rstrip("/"), headers=headers, auth=auth, timeout=30)
        self.storage = httpx.Client(timeout=httpx.Timeout(30, write=300))

    def __enter__(self) -> tuple[httpx.Client, httpx.Client]:
        return self.api, self.storage

    def __exit__(self, *_: object) -> None:
        self.api.close()
        self.storage.close()


def _mint(target: Target) -> str | None:
    from dig_api.auth import ALL_SCOPES, KeySet, mint

    if target.local:
        from dig_local.resources import local_token

        return local_token(hours=1)
    if target.signing_secret_arn is None:
        return None  # an IAM (SigV4) stack
    secret = target.client("secretsmanager").get_secret_value(SecretId=target.signing_secret_arn)
    keys = KeySet.from_secret(secret["SecretString"])
    user = os.environ.get("USER", "operator")
    issuer = target.jwt_issuer or ""
    return mint(keys, client_id=f"dig-cli:{user}", issuer=issuer, audience="dig-api", scopes=ALL_SCOPES, hours=1)


class _SigV4(httpx.Auth):
    """SigV4 for a stack deployed with apiAuth=iam, with botocore's signer."""

    def __init__(self, target: Target) -> None:
        self._credentials = target.session.get_credentials()
        self._region = target.region

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        signed = AWSRequest(method=request.method, url=str(request.url), data=request.content)
        SigV4Auth(self._credentials, "execute-api", self._region).add_auth(signed)
        request.headers.update(dict(signed.headers))
        yield request
