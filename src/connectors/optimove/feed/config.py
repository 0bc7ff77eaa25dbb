"""The daily batch channel's configuration: which ES Loyalty extract feeds which Optimove data set,
column by column, and where, in what format and by when the day's files go.

Part of the Optimove connector's configuration (``batchFeed``), validated and versioned with it. The
data sets and their column names are the tenant's, as its Optimove onboarding defines them; the
customer data set's attribute columns count in Optimove's limit of 50 custom attributes together
with the real-time mappings (connectors.optimove.config).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dig_contracts.extracts import EXTRACTS, LAST_UPDATED, ColumnType

DEFAULT_MAX_FILE_MB = 200  # Optimove recommends 100-250 MB a file
MAX_FILE_MB = 1024  # and refuses a file over 1 GB
OptimoveColumn = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSetKind(StrEnum):
    CUSTOMERS = "customers"  # one row per customer: its attributes; creates the customers it brings
    OFFERS = "offers"
    ORDERS = "orders"
    OTHER = "other"  # partner links, Extended Member Data, ... as the onboarding names them


class FileFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"
    PARQUET = "parquet"  # GZIP pages; the feed job ships pyarrow in a layer of its own


class HistoryMode(StrEnum):
    INCREMENTAL = "incremental"  # rows new or changed in content since the last day sent
    FULL = "full"  # every row (the initial historical load, or a reload Optimove asked for)


class FeedColumn(Strict):
    source: str = Field(description="The extract's column")
    target: OptimoveColumn = Field(description="The Optimove column it fills")
    type: ColumnType | None = Field(default=None, description="Its type in the file; the extract's when unset")


class DataSet(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")] = Field(
        description="The data set's name in the file names (as agreed with Optimove)"
    )
    kind: DataSetKind
    extract: str = Field(description="The ES Loyalty extract (dig_contracts.extracts) that feeds it")
    customerId: OptimoveColumn = Field(default="CustomerID", description="The column carrying the member id")
    customerIdSource: str = Field(default="memberId", description="The extract's column with the member id")
    columns: list[FeedColumn] = Field(min_length=1)

    def attribute_columns(self) -> list[str]:
        return [c.target for c in self.columns]


class Destination(Strict):
    bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    prefix: str = Field(default="", description="Under which the dated folders go, e.g. 'dig/'")
    roleArn: str | None = Field(default=None, description="A role of Optimove's to assume for writing, if required")
    kmsKeyArn: str | None = Field(default=None, description="SSE-KMS key the bucket requires, if any")

    @model_validator(mode="after")
    def _prefix(self) -> Destination:
        if self.prefix and (self.prefix.startswith("/") or not self.prefix.endswith("/")):
            raise ValueError("prefix: must not start with '/' and must end with '/' (or be empty)")
        return self


SnowflakeName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_$]{0,254}$")]


class Snowflake(Strict):
    """The second daily destination (the seed's "Snowflake Data Sharing"): the same incremental rows as the
    day's files, MERGEd by key into one table per data set, ``<tablePrefix><NAME>``, in a database the
    program shares with Optimove's account. The connection's account, user and key pair are in Secrets
    Manager (the manifest's SNOWFLAKE_SECRET_ID), never here."""

    database: SnowflakeName
    schema_: SnowflakeName = Field(alias="schema")
    warehouse: SnowflakeName | None = None
    role: SnowflakeName | None = None
    tablePrefix: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")] = "OPTIMOVE_"
    rowsPerFile: int = Field(
        default=1_000_000, ge=1_000, le=10_000_000, description="Rows per gzip CSV file PUT to the stage"
    )


class BatchFeed(Strict):
    dataSets: list[DataSet] = Field(min_length=1)
    format: FileFormat = FileFormat.CSV
    destination: Destination
    readinessTimeUtc: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")] = Field(
        description="HH:MM UTC: when Optimove starts loading the day's files (agreed at onboarding)"
    )
    snowflake: Snowflake | None = Field(
        default=None, description="The second destination: the same rows MERGEd into shared Snowflake tables"
    )
    history: HistoryMode = HistoryMode.INCREMENTAL
    maxFileMegabytes: int = Field(default=DEFAULT_MAX_FILE_MB, ge=1, le=MAX_FILE_MB)
    expectedExtracts: list[str] = Field(
        default_factory=list,
        description="Extracts that must arrive every day (an alarm when one did not); the data sets' by default",
    )

    @model_validator(mode="after")
    def _rules(self) -> BatchFeed:
        problems = list(_problems(self))
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def expected(self) -> list[str]:
        return self.expectedExtracts or sorted({d.extract for d in self.dataSets})

    def customer_attributes(self) -> set[str]:
        """The custom attributes the batch channel fills (Optimove's limit of 50 counts them)."""
        return {
            c
            for d in self.dataSets
            if d.kind is DataSetKind.CUSTOMERS
            for c in d.attribute_columns()
            if c not in (d.customerId, LAST_UPDATED)
        }


_COMPATIBLE = {  # extract type -> the file types it may be written as
    ColumnType.DATETIME: {ColumnType.DATETIME, ColumnType.DATE, ColumnType.STRING},
    ColumnType.DATE: {ColumnType.DATE, ColumnType.STRING},
}


def _problems(feed: BatchFeed) -> Iterable[str]:
    names = [d.name for d in feed.dataSets]
    for name in sorted({n for n in names if names.count(n) > 1}):
        yield f"dataSets: {name} is named twice"
    for index, data_set in enumerate(feed.dataSets):
        where = f"dataSets[{index}] ({data_set.name})"
        schema = EXTRACTS.get(data_set.extract)
        if schema is None:
            yield f"{where}.extract: '{data_set.extract}' is not an extract ({', '.join(sorted(EXTRACTS))})"
            continue
        if schema.column(data_set.customerIdSource) is None:
            yield f"{where}.customerIdSource: '{data_set.customerIdSource}' is not a column of {schema.name}"
        targets = [c.target for c in data_set.columns]
        for target in sorted({t for t in targets if targets.count(t) > 1} | ({data_set.customerId} & set(targets))):
            yield f"{where}.columns: {target} is filled twice"
        if LAST_UPDATED in targets:
            yield f"{where}.columns: {LAST_UPDATED} is DIG's (when it saw the change), not mapped"
        for position, column in enumerate(data_set.columns):
            source = schema.column(column.source)
            if source is None:
                yield f"{where}.columns[{position}].source: '{column.source}' is not a column of {schema.name}"
            elif column.type is not None and column.type not in _COMPATIBLE.get(source.type, {source.type}):
                yield (
                    f"{where}.columns[{position}].type: {source.name} is {source.type.value} in the extract; "
                    f"it cannot be written as {column.type.value}"
                )
    for extract in feed.expectedExtracts:
        if extract not in EXTRACTS:
            yield f"expectedExtracts: '{extract}' is not an extract"


def file_type(data_set: DataSet, column: FeedColumn) -> ColumnType:
    """The type ``column`` is written as: its own, else the extract column's."""
    if column.type is not None:
        return column.type
    found = EXTRACTS[data_set.extract].column(column.source)
    assert found is not None  # validated
    return found.type
