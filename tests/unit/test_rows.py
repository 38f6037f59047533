"""rows.py on hand-written payloads: ids, parents, filters, value cleaning (docs/records.md)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from tap_dialfire.rows import (
    RowBuilder,
    StreamColumns,
    TransactionFilter,
    ValuePolicy,
    columns_from_schema,
    custom_fields,
    normalize_datetime,
)
from tap_dialfire.stream_schemas import base_schema, contacts_schema

CONTACT_ID = "ABCDEFGHJKLMNPQR"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def builder(mode: str = "all", prefixes: tuple[str, ...] = (), fmt: str = "sql") -> RowBuilder:
    custom = custom_fields([
        {"type": "field", "fieldType": "number", "name": "Anzahl", "deleted": False},
        {"type": "field", "fieldType": "checkbox", "name": "Newsletter", "deleted": False},
        {"type": "field", "fieldType": "text", "name": "Alt", "deleted": True},
        {"type": "label", "name": "Hinweis", "deleted": False},
    ])
    columns = StreamColumns(
        contacts=columns_from_schema(contacts_schema(custom)),
        transactions=columns_from_schema(base_schema("transactions")),
        connections=columns_from_schema(base_schema("connections")),
        recordings=columns_from_schema(base_schema("recordings")),
        inbound_calls=columns_from_schema(base_schema("inbound_calls")),
    )
    return RowBuilder(columns, TransactionFilter(mode, prefixes), ValuePolicy(fmt))


def transaction(fired: str, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "update", "task": "fc_call", "task_id": "T1", "status": "open",
        "status_detail": "$none", "fired": fired, "user": "agent", "id": CONTACT_ID,
        "sequence_nr": None, "connections": [], "data": {"Anzahl": ""},
    }
    base.update(extra)
    return base


def contact(*transactions: dict[str, Any], **fields: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "$id": CONTACT_ID, "$md5": "0" * 32, "$ref": "",
        "$created_date": "2021-09-02T15:34:39.960Z",
        "$$fc_call_status": "open", "Anzahl": 12, "Newsletter": "true", "Alt": "gone",
        "$task_log": [{"task_name": "fc_call", "transactions": list(transactions)}],
    }
    payload.update(fields)
    return payload


def test_custom_fields_are_live_fields_only_numbers_as_numbers() -> None:
    columns = builder().columns.contacts
    assert columns["Anzahl"] == "number"
    assert columns["Newsletter"] == "string"
    assert "Alt" not in columns and "Hinweis" not in columns
    assert columns["$created_date"] == "datetime"


def test_contact_row_cleans_values_and_keeps_undeclared_keys_in_extra() -> None:
    rows = builder().contact_rows(contact(), "2026-01-01T00:00:00.000Z")
    row = rows.contact
    assert row["$id"] == CONTACT_ID
    assert row["$ref"] is None  # empty string -> null
    assert row["$phone"] is None  # missing -> null
    assert row["Anzahl"] == 12
    assert row["$extra"] == {"$$fc_call_status": "open", "Alt": "gone"}
    assert "$task_log" not in row and "$task_log" not in row["$extra"]
    assert row["$changed"] == "2026-01-01T00:00:00.000Z"


def test_a_value_that_cannot_be_coerced_is_null_and_kept_in_extra() -> None:
    row = builder().contact_rows(contact(Anzahl="ca. 50"), None).contact
    assert row["Anzahl"] is None
    assert row["$extra"]["Anzahl"] == "ca. 50"
    assert builder().contact_rows(contact(Anzahl="1.5"), None).contact["Anzahl"] == 1.5
    assert builder().contact_rows(contact(Anzahl="7"), None).contact["Anzahl"] == 7


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("2021-09-02T15:34:39.960Z", "2021-09-02T15:34:39.960Z"),
        ("2021-09-02T15:34:39Z", "2021-09-02T15:34:39.000Z"),
        ("2021-09-02T15:34:39.123456789", "2021-09-02T15:34:39.123Z"),
        ("2021-09-02T17:34:39.5+02:00", "2021-09-02T15:34:39.500Z"),
        ("2021-09-02T00:10:00-01:30", "2021-09-02T01:40:00.000Z"),
        ("2021-02-30T00:00:00Z", None),
        ("gestern", None),
    ],
)
def test_datetimes_are_normalised_to_one_utc_form(text: str, normalized: str | None) -> None:
    assert normalize_datetime(text) == normalized


def test_same_fired_transactions_both_survive_with_documented_ids() -> None:
    fired = "2021-09-02T15:34:39.960Z"
    rows = builder().contact_rows(
        contact(transaction(fired), transaction(fired, sequence_nr=7), transaction(fired)), None
    )
    ids = [row["id"] for row in rows.transactions]
    assert ids == [
        md5(CONTACT_ID + fired),
        md5(f"{CONTACT_ID}{fired}#7"),
        md5(f"{CONTACT_ID}{fired}#3"),
    ]
    assert [r["transaction_index"] for r in rows.transactions] == [0, 1, 2]
    assert rows.transactions[1]["sequence_nr"] == 7
    assert rows.transactions[0]["data"] == {"Anzahl": ""}  # nested values as sent
    assert "id" not in (rows.transactions[0]["$extra"] or {})


def test_ids_do_not_depend_on_the_filter() -> None:
    fired = "2021-09-02T15:34:39.960Z"
    payload = contact(transaction(fired, task="qc_x"), transaction(fired, sequence_nr=2))
    kept = builder(prefixes=("fc_",)).contact_rows(payload, None).transactions
    assert [r["id"] for r in kept] == [md5(f"{CONTACT_ID}{fired}#2")]


def test_connections_get_parents_third_party_rows_and_recordings() -> None:
    third = {"id": "C3", "technology": "transfer", "recordings": [
        {"location": None, "started": "2021-09-02T15:35:00.000Z", "filename": "x.wav"}]}
    connections = [
        {"id": "C1", "technology": "phone", "isThirdPartyConnection": "",
         "recordings": [{"location": "https://r/1", "started": "2021-09-02T15:34:50.000Z"}]},
        {"id": "C2", "technology": "transfer", "third_party_connections": [third],
         "isThirdPartyConnection": True},
    ]
    rows = builder().contact_rows(
        contact(transaction("2021-09-02T15:34:39.960Z", connections=connections)), None
    )
    by_id = {row["id"]: row for row in rows.connections}
    assert by_id["C1"]["parent_connection_id"] is None
    assert by_id["C2"]["parent_connection_id"] == "C1"
    assert by_id["C3"]["parent_connection_id"] == "C2"
    assert by_id["C1"]["isThirdPartyConnection"] is False
    assert by_id["C2"]["isThirdPartyConnection"] is True
    assert by_id["C3"]["isThirdPartyConnection"] is False
    assert by_id["C1"]["disconnected"] is None  # a call still in progress
    tx_id = rows.transactions[0]["id"]
    assert {row["transaction_id"] for row in rows.connections} == {tx_id}
    assert by_id["C2"]["$extra"] is None  # third_party_connections is structural
    recordings = {row["connection_id"]: row for row in rows.recordings}
    assert recordings["C1"]["id"] == md5("C1https://r/1")
    assert recordings["C3"]["id"] == md5("C32021-09-02T15:35:00.000Z")
    assert recordings["C3"]["contact_id"] == CONTACT_ID


@pytest.mark.parametrize(
    ("mode", "kept"),
    [("all", 4), ("updates_only", 3), ("hi_updates_only", 1)],
)
def test_filter_modes(mode: str, kept: int) -> None:
    payload = contact(
        transaction("2021-01-01T00:00:01.000Z", type="create"),
        transaction("2021-01-01T00:00:02.000Z", user=None),
        transaction("2021-01-01T00:00:03.000Z", status_detail="$assigned"),
        transaction("2021-01-01T00:00:04.000Z",
                    connections=[{"id": "C9", "technology": "phone"}]),
    )
    rows = builder(mode).contact_rows(payload, None)
    assert len(rows.transactions) == kept
    assert len(rows.connections) == 1  # only the kept human update has a call


def test_raw_value_format_keeps_strings_as_sent_but_still_coerces() -> None:
    rows = builder(fmt="raw").contact_rows(
        contact(transaction("2021-09-02T15:34:39.96+00:00", pause_time_sec="3")), None
    )
    assert rows.contact["$ref"] == ""
    assert rows.transactions[0]["fired"] == "2021-09-02T15:34:39.96+00:00"
    assert rows.transactions[0]["pause_time_sec"] == 3


def test_inbound_calls_are_renamed_and_typed() -> None:
    row = builder().inbound_call_row(
        {"id": "I1", "calling_number": "+4930", "called_number": "+4940",
         "call_time": "2021-09-02T15:34:39.960Z", "connect_time": "", "hangup_time":
         "2021-09-02T15:35:39.960Z", "dispatch_error": "false", "surprise": "x"},
        None,
    )
    assert row["remote_number"] == "+4930" and row["line_number"] == "+4940"
    assert row["started"] == "2021-09-02T15:34:39.960Z" and row["connected"] is None
    assert row["dispatch_error"] is False
    assert row["$extra"] == {"surprise": "x"}
    assert "calling_number" not in row


def test_string_columns_take_numbers_and_booleans_as_json_text() -> None:
    rows = builder().contact_rows(contact(transaction("x", user=12, actor=True)), None)
    tx = rows.transactions[0]
    assert tx["user"] == "12" and tx["actor"] == "true"
    assert tx["fired"] is None and tx["$extra"]["fired"] == "x"


@pytest.mark.parametrize("prefixes", [("",), ("", " "), ()])
def test_empty_task_prefixes_mean_no_task_filter(prefixes: tuple[str, ...]) -> None:
    """An empty TAP_DIALFIRE_TASK_PREFIXES arrives as [""]: it must not send `tasks=` (what the
    API makes of an empty prefix list is unknown) and must keep every task."""
    transaction_filter = TransactionFilter(task_prefixes=prefixes)
    assert transaction_filter.task_prefixes == ()
    assert "tasks" not in transaction_filter.feed_params()
    assert transaction_filter.keeps({"type": "update", "task": "import"})


def test_task_prefixes_are_trimmed() -> None:
    """`fc_, qc_` means fc_ and qc_: " qc_" would match no task and drop them all silently."""
    transaction_filter = TransactionFilter(task_prefixes=("fc_", " qc_ "))
    assert transaction_filter.task_prefixes == ("fc_", "qc_")
    assert transaction_filter.feed_params()["tasks"] == "fc_,qc_"
    assert transaction_filter.keeps({"type": "update", "task": "qc_pruefung"})
