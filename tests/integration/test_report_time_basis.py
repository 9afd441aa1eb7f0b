"""Reports by event time: a backfilled row (sent today, dated days ago) lands on its own day,
unless the report asks for time_basis=received. Through the real server, on both stores: one
server per module (and store), each test with a key of a partner of its own and reports of it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.integration.server import ServerProcess, cli, real_click


def report(client: httpx.Client, name: str, **params: str) -> dict[str, Any]:
    answer = client.get(f"/v1/api/reports/{name}", params=params)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def by_day(found: dict[str, Any], metric: str) -> dict[str, int]:
    return {row["day"]: row[metric] for row in found["rows"]}


def test_the_event_time_places_backfilled_rows_on_their_own_day(
    module_server: ServerProcess, partner_client: httpx.Client, partner: str
) -> None:
    today = datetime.now(UTC).date()
    past = datetime.combine(today - timedelta(days=3), datetime.min.time(), UTC) + timedelta(
        hours=12
    )
    past_day, today_day = past.date().isoformat(), today.isoformat()
    for body in (
        {"event_name": "page_view", "timestamp": int(past.timestamp())},
        {"event_name": "page_view"},  # no timestamp: the receive time
    ):
        answer = partner_client.post("/v1/api/collect", json={"tag_id": "adv_001", **body})
        assert answer.status_code == 204, answer.text
    click_id = real_click(module_server)
    answer = partner_client.post(
        "/v1/api/conversion",
        json={
            "click_id": click_id,
            "conversion_time": past.isoformat().replace("+00:00", "Z"),
            "conversion_value": 9.5,
            "currency": "EUR",
            "order_id": "o-backfilled",
        },
    )
    assert answer.status_code == 200, answer.text

    events = report(partner_client, "events", group_by="day")
    assert events["time_basis"] == "event"
    assert by_day(events, "events") == {past_day: 1, today_day: 1}
    received = report(partner_client, "events", group_by="day", time_basis="received")
    assert received["time_basis"] == "received"
    assert by_day(received, "events") == {today_day: 2}

    conversions = report(partner_client, "conversions", group_by="day")
    assert by_day(conversions, "conversions") == {past_day: 1}
    received = report(partner_client, "conversions", group_by="day", time_basis="received")
    assert by_day(received, "conversions") == {today_day: 1}

    # since and until select by the basis: the backfilled day holds only the backfilled rows.
    day = {"since": past_day, "until": (past.date() + timedelta(days=1)).isoformat()}
    assert report(partner_client, "events", **day)["rows"] == [{"events": 1}]
    assert report(partner_client, "events", **day, time_basis="received")["rows"] == [{"events": 0}]
    assert report(partner_client, "conversions", **day)["rows"] == [
        {"conversions": 1, "revenue": {"EUR": "9.5"}}
    ]
    assert report(partner_client, "conversions", **day, time_basis="received")["rows"] == [
        {"conversions": 0, "revenue": {}}
    ]
    hour = report(partner_client, "events", **day, group_by="hour")
    assert [row["hour"] for row in hour["rows"]] == [f"{past_day}T12:00:00Z"]

    # A click has only its receive time: the funnel is the same on both bases.
    funnel = report(partner_client, "funnel", group_by="day")
    assert (
        funnel["rows"]
        == report(partner_client, "funnel", group_by="day", time_basis="received")["rows"]
    )
    assert [(row["day"], row["clicks"]) for row in funnel["rows"]] == [(today_day, 1)]

    def cli_report(*extra: str) -> dict[str, Any]:
        daily = ("report", "events", "--group-by", "day", "--partner", partner, "--json")
        return dict(json.loads(cli(module_server.database_url, *daily, *extra)))

    assert by_day(cli_report(), "events") == {past_day: 1, today_day: 1}
    as_cli = cli_report("--time-basis", "received")
    assert (as_cli["time_basis"], by_day(as_cli, "events")) == ("received", {today_day: 2})


def test_an_unknown_time_basis_is_a_422_naming_it(
    module_server: ServerProcess, partner_client: httpx.Client, partner: str
) -> None:
    for name in ("events", "conversions", "funnel"):
        answer = partner_client.get(f"/v1/api/reports/{name}", params={"time_basis": "clicked"})
        assert answer.status_code == 422
        (detail,) = answer.json()["error"]["details"]
        assert detail["field"] == "time_basis"
    with pytest.raises(RuntimeError, match="time_basis"):
        cli(module_server.database_url, "report", "events", "--time-basis", "clicked")
