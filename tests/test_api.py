"""`callmetrics serve` as a real process on 127.0.0.1, called with a real HTTP client.

The bodies are checked against `callmetrics export` for the same request (run in process on
the same warehouse); the tenancy matrix against what `api.md` says each key may see; every
error against the JSON body and status of `api.md`.
"""

from __future__ import annotations

import json
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from callmetrics.api.keys import KEYS_ENV, create_key, revoke_key
from callmetrics.cli import main
from callmetrics.settings import WAREHOUSE_ENV
from tests.api_support import ApiServer, running_server
from tests.conftest import BuiltWarehouse
from tests.reference_metrics import assert_valid_payload

NOT_FOUND = {"error": {"code": "not_found", "message": (
    "not found: no organization or reseller with that id is visible to this key")}}
# Ranges that cut through buckets, days and offsets (the generated calls span 2025-02-10 to
# 2025-03-01).
RANGES = [
    ("2025-02-12T07:13:22.123456Z", "2025-02-19T16:41:05.5Z"),
    ("2025-02-10", "2025-02-25"),
    ("2025-02-20T23:59:59.999999Z", "2025-02-21T00:00:00.000001"),
    ("2025-02-15T08:07:00+05:30", "2025-03-01T12:00:00-03:00"),
]
WHOLE = ("2025-02-01", "2025-03-05")


@dataclass(frozen=True)
class Tenants:
    """Ids of the generated warehouse: a reseller with two organizations or more (r1: o1,
    o2), another reseller with an organization (r2: o3)."""

    r1: str
    o1: str
    o2: str
    r2: str
    o3: str
    orgs: tuple[str, ...]
    resellers: tuple[str, ...]
    reseller_of: dict[str, str | None]


@dataclass(frozen=True)
class Keys:
    org: str
    reseller: str
    platform: str
    path: Path


@pytest.fixture(scope="module")
def tenants(generated_warehouse: BuiltWarehouse) -> Tenants:
    rows = generated_warehouse.query(
        "select organization_id, reseller_id from marts.dim_organizations order by 1")
    reseller_of = dict(rows)
    by_reseller: dict[str, list[str]] = {}
    for org, reseller in rows:
        if reseller is not None:
            by_reseller.setdefault(reseller, []).append(org)
    big = sorted((r for r, os_ in by_reseller.items() if len(os_) >= 2),
                 key=lambda r: (-len(by_reseller[r]), r))
    assert big, "the generated warehouse needs a reseller with two organizations"
    r1 = big[0]
    r2 = sorted(r for r in by_reseller if r != r1)[0]
    resellers = tuple(r for (r,) in generated_warehouse.query(
        "select reseller_id from marts.dim_resellers order by 1"))
    return Tenants(r1=r1, o1=by_reseller[r1][0], o2=by_reseller[r1][1], r2=r2,
                   o3=by_reseller[r2][0], orgs=tuple(reseller_of), resellers=resellers,
                   reseller_of=reseller_of)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory, tenants: Tenants) -> Keys:
    path = tmp_path_factory.mktemp("api-keys") / "keys.json"
    _, org = create_key(path, "organization", tenants.o1, "org one")
    _, reseller = create_key(path, "reseller", tenants.r1, "reseller one")
    _, platform = create_key(path, "platform", None, "ops")
    return Keys(org=org, reseller=reseller, platform=platform, path=path)


@pytest.fixture(scope="module")
def server(generated_warehouse: BuiltWarehouse, keys: Keys,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    log = tmp_path_factory.mktemp("api-log") / "server.log"
    with running_server(generated_warehouse.warehouse, keys.path, log) as api:
        yield api


@pytest.fixture(scope="module")
def client(server: ApiServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def ask(client: httpx.Client, key: str | None, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return client.get("/v1/metrics", params=params, headers=headers)


def export(warehouse: Path, capsys: pytest.CaptureFixture, start: str, end: str,
           org: str | None = None, reseller: str | None = None) -> dict:
    """What `callmetrics export` prints for the request."""
    args = ["export", "--start", start, "--end", end]
    args += ["--org", org] if org else []
    args += ["--reseller", reseller] if reseller else []
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(WAREHOUSE_ENV, str(warehouse))
        assert main(args) == 0
    return json.loads(capsys.readouterr().out)


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    assert "Traceback" not in response.text and "File \"" not in response.text
    return body


# ------------------------------------------------------------------ bodies = export


def test_time_zone_week_and_previous_period_equal_export(
    client: httpx.Client, keys: Keys, tenants: Tenants, generated_warehouse: BuiltWarehouse,
    capsys: pytest.CaptureFixture,
) -> None:
    """timeZone, granularity and compare reach the exporter: the body is what
    `callmetrics export --tz --granularity --compare` prints for the same request."""
    org = tenants.orgs[0]
    for zone, unit in (("Asia/Kathmandu", "week"), ("America/New_York", "month")):
        response = ask(client, keys.platform, startDate="2025-02-10", endDate="2025-02-24",
                       organizationId=org, timeZone=zone, granularity=unit,
                       compare="previous")
        assert response.status_code == 200, response.text
        body = response.json()
        assert_valid_payload(body)
        assert body["meta"]["timeZone"] == zone and body["meta"]["granularity"] == unit
        assert "previousPeriod" in body["data"]
        capsys.readouterr()
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(WAREHOUSE_ENV, str(generated_warehouse.warehouse))
            assert main(["export", "--start", "2025-02-10", "--end", "2025-02-24", "--org", org,
                         "--tz", zone, "--granularity", unit, "--compare", "previous"]) == 0
        assert body == json.loads(capsys.readouterr().out)


def test_body_equals_export_for_every_scope_and_unaligned_ranges(
    client: httpx.Client, keys: Keys, tenants: Tenants, generated_warehouse: BuiltWarehouse,
    capsys: pytest.CaptureFixture,
) -> None:
    scopes: list[tuple[str | None, str | None]] = [(None, None)]
    scopes += [(o, None) for o in tenants.orgs]
    scopes += [(None, r) for r in tenants.resellers]
    scopes += [(o, r) for o, r in tenants.reseller_of.items() if r is not None]
    compared = 0
    for start, end in RANGES:
        for org, reseller in scopes:
            params = {"startDate": start, "endDate": end}
            params |= {"organizationId": org} if org else {}
            params |= {"resellerId": reseller} if reseller else {}
            response = ask(client, keys.platform, **params)
            assert response.status_code == 200, response.text
            body = response.json()
            assert body == export(generated_warehouse.warehouse, capsys, start, end, org,
                                  reseller), (start, end, org, reseller)
            assert_valid_payload(body)
            compared += 1
    assert compared == len(RANGES) * len(scopes) >= 4 * 10
    # The ranges are not all empty: the payloads hold calls.
    whole = ask(client, keys.platform, startDate=WHOLE[0], endDate=WHOLE[1]).json()
    assert whole["data"]["metrics"]["totalCalls"] > 1000


def test_the_extreme_ranges_equal_export(
    client: httpx.Client, keys: Keys, tenants: Tenants, generated_warehouse: BuiltWarehouse,
    capsys: pytest.CaptureFixture,
) -> None:
    for start, end in (("0001-01-01T00:00:00Z", "0001-01-03"), ("0001-01-01", "0001-01-01"),
                       ("9999-12-29", "9999-12-31T23:59:59.999999Z"),
                       ("2025-02-10T10:00:00.0000005Z", "2025-02-10T10:00:00.0000009Z")):
        response = ask(client, keys.platform, startDate=start, endDate=end,
                       organizationId=tenants.o1)
        assert response.status_code == 200, (start, end, response.text)
        assert response.json() == export(generated_warehouse.warehouse, capsys, start, end,
                                         tenants.o1)


def test_meta_says_what_was_answered(client: httpx.Client, keys: Keys,
                                     generated_warehouse: BuiltWarehouse) -> None:
    body = ask(client, keys.org, startDate="2025-02-10", endDate="2025-02-11T06:00:00+01:00"
               ).json()
    newest = generated_warehouse.query(
        "select strftime(max(updated_at), '%Y-%m-%dT%H:%M:%S.%fZ') "
        "from staging.stg_platform__calls")[0][0]
    version = generated_warehouse.query("select version from meta.warehouse_version")[0][0]
    assert body["meta"] == {
        "startDate": "2025-02-10T00:00:00.000000Z", "endDate": "2025-02-11T05:00:00.000000Z",
        "timeZone": "UTC", "granularity": "day", "warehouseVersion": version,
        "dataAsOf": newest,
    }
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "warehouseVersion": version}


# ------------------------------------------------------------------ tenancy matrix

# Each request kind: (organizationId, resellerId) named from the Tenants fields.
REQUESTS = {
    "own org": ("o1", None),
    "other org, same reseller": ("o2", None),
    "org of another reseller": ("o3", None),
    "own reseller": (None, "r1"),
    "other reseller": (None, "r2"),
    "both, matching": ("o1", "r1"),
    "both, org of another reseller": ("o3", "r1"),
    "both, own org under another reseller": ("o1", "r2"),
    "none": (None, None),
}
# What each key is answered: the scope exported, or None for the shared 404.
EXPECTED: dict[str, dict[str, tuple[str | None, str | None] | None]] = {
    "org": {
        "own org": ("o1", None), "other org, same reseller": None,
        "org of another reseller": None, "own reseller": None, "other reseller": None,
        "both, matching": ("o1", "r1"), "both, org of another reseller": None,
        "both, own org under another reseller": None, "none": ("o1", None),
    },
    "reseller": {
        "own org": ("o1", None), "other org, same reseller": ("o2", None),
        "org of another reseller": None, "own reseller": (None, "r1"),
        "other reseller": None, "both, matching": ("o1", "r1"),
        "both, org of another reseller": None, "both, own org under another reseller": None,
        "none": (None, "r1"),
    },
    "platform": {
        "own org": ("o1", None), "other org, same reseller": ("o2", None),
        "org of another reseller": ("o3", None), "own reseller": (None, "r1"),
        "other reseller": (None, "r2"), "both, matching": ("o1", "r1"),
        "both, org of another reseller": None, "both, own org under another reseller": None,
        "none": (None, None),
    },
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_tenancy_matrix(kind: str, client: httpx.Client, keys: Keys, tenants: Tenants,
                        generated_warehouse: BuiltWarehouse,
                        capsys: pytest.CaptureFixture) -> None:
    key = getattr(keys, kind)
    start, end = RANGES[0]

    def ids(pair: tuple[str | None, str | None]) -> tuple[str | None, str | None]:
        org, reseller = pair
        return (getattr(tenants, org) if org else None,
                getattr(tenants, reseller) if reseller else None)

    # "Does not exist" for this key: unknown ids, alone and together with known ones.
    missing = [ask(client, key, startDate=start, endDate=end, **params) for params in (
        {"organizationId": "no-such-org"}, {"resellerId": "no-such-reseller"},
        {"organizationId": "no-such-org", "resellerId": tenants.r1},
    )]
    outcome: dict[str, int] = {}
    for name, pair in REQUESTS.items():
        org, reseller = ids(pair)
        params = {"startDate": start, "endDate": end}
        params |= {"organizationId": org} if org else {}
        params |= {"resellerId": reseller} if reseller else {}
        response = ask(client, key, **params)
        outcome[name] = response.status_code
        expected = EXPECTED[kind][name]
        if expected is None:
            assert_error(response, 404, "not_found")
            assert response.content in {m.content for m in missing}
        else:
            assert response.status_code == 200, (name, response.text)
            want_org, want_reseller = ids(expected)
            assert response.json() == export(generated_warehouse.warehouse, capsys, start, end,
                                             want_org, want_reseller), name
    for response in missing:
        assert_error(response, 404, "not_found")
        assert response.json() == NOT_FOUND
        assert response.content == missing[0].content  # byte for byte the same body
    assert outcome == {n: 404 if e is None else 200 for n, e in EXPECTED[kind].items()}


def test_a_key_for_a_tenant_not_in_the_warehouse_sees_nothing(
    client: httpx.Client, keys: Keys, tenants: Tenants,
) -> None:
    _, future_org = create_key(keys.path, "organization", "arrives-tomorrow")
    _, future_reseller = create_key(keys.path, "reseller", "reseller-tomorrow")
    start, end = RANGES[1]
    for key in (future_org, future_reseller):
        for params in ({}, {"organizationId": tenants.o1}, {"resellerId": tenants.r1}):
            response = ask(client, key, startDate=start, endDate=end, **params)
            assert_error(response, 404, "not_found")
            assert response.json() == NOT_FOUND


# ------------------------------------------------------------------ 400, 401, 404, 405

BAD_REQUESTS = [
    ({"endDate": "2025-02-11"}, "startDate is missing"),
    ({"startDate": "2025-02-10"}, "endDate is missing"),
    ({}, "startDate is missing"),
    ({"startDate": "yesterday", "endDate": "2025-02-11"}, "startDate 'yesterday' is not"),
    ({"startDate": "2025-02-10", "endDate": "2025-13-01"}, "endDate '2025-13-01' is not"),
    ({"startDate": "", "endDate": "2025-02-11"}, "startDate is empty"),
    ({"startDate": "2025-02-12", "endDate": "2025-02-11"}, "is after"),
    ({"startDate": "2025-02-11T10:00:00Z", "endDate": "2025-02-11T09:59:59Z"}, "is after"),
    ({"startDate": "2025-02-10", "endDate": "2" * 10_000}, "endDate is too long"),
    ({"startDate": "0001-01-01", "endDate": "9999-12-31"}, "at most 3,660 days"),
    ({"startDate": "2025-02-10", "endDate": "2025-02-11", "organizationID": "x"},
     "unknown parameter 'organizationID'"),
    ({"startDate": "2025-02-10", "endDate": "2025-02-11", "org": "x"}, "unknown parameter"),
    ({"startDate": "2025-02-10", "endDate": "2025-02-11", "timeZone": "Mars/Olympus"},
     "not a known IANA time zone"),
    ({"startDate": "2025-02-10", "endDate": "2025-02-11", "granularity": "hour"},
     "not one of day, week, month"),
    ({"startDate": "2025-02-10", "endDate": "2025-02-11", "compare": "last-year"},
     "not a known comparison"),
    ({"startDate": "2025-02-10", "endDate": "2025-02-11", "organizationId": ""},
     "organizationId is empty"),
    ({"startDate": "2025-02-10", "endDate": "2025-02-11", "resellerId": "  "},
     "resellerId is empty"),
]


@pytest.mark.parametrize(("params", "says"), BAD_REQUESTS)
def test_bad_requests_are_400(client: httpx.Client, keys: Keys, params: dict[str, str],
                              says: str) -> None:
    body = assert_error(ask(client, keys.platform, **params), 400, "invalid_parameter")
    assert says in body["error"]["message"]
    assert len(body["error"]["message"]) < 400 and "\n" not in body["error"]["message"]


def test_repeated_parameters_and_defaults(client: httpx.Client, keys: Keys,
                                          tenants: Tenants) -> None:
    headers = {"Authorization": f"Bearer {keys.platform}"}
    query = (f"startDate=2025-02-10&endDate=2025-02-11&organizationId={tenants.o1}"
             f"&organizationId={tenants.o3}")
    body = assert_error(client.get(f"/v1/metrics?{query}", headers=headers), 400,
                        "invalid_parameter")
    assert "more than once" in body["error"]["message"]
    plain = ask(client, keys.platform, startDate="2025-02-10", endDate="2025-02-11")
    explicit = ask(client, keys.platform, startDate="2025-02-10", endDate="2025-02-11",
                   timeZone="UTC", granularity="day")
    assert plain.status_code == explicit.status_code == 200
    assert plain.json() == explicit.json()


def test_keys_that_are_missing_garbled_unknown_or_revoked_are_401(
    client: httpx.Client, keys: Keys,
) -> None:
    record, token = create_key(keys.path, "platform", None, "to be revoked")
    params = {"startDate": "2025-02-10", "endDate": "2025-02-11"}
    assert ask(client, token, **params).status_code == 200
    revoke_key(keys.path, record.id)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    well_formed_unknown = "cmk_" + "0" * 12 + "_" + "x" * 43
    cases = {
        "no header": {},
        "empty": {"Authorization": ""},
        "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
        "bearer alone": {"Authorization": "Bearer"},
        "bearer garbage": {"Authorization": "Bearer not-a-key"},
        "bearer with spaces": {"Authorization": f"Bearer {keys.platform} extra"},
        "forged secret": {"Authorization": f"Bearer {forged}"},
        "unknown id": {"Authorization": f"Bearer {well_formed_unknown}"},
        "revoked": {"Authorization": f"Bearer {token}"},
        "huge": {"Authorization": "Bearer " + "k" * 10_000},
    }
    for name, headers in cases.items():
        response = client.get("/v1/metrics", params=params, headers=headers)
        assert_error(response, 401, "unauthorized")
        assert response.headers["www-authenticate"].startswith("Bearer"), name
    # The other keys still work after the file changed.
    assert ask(client, keys.platform, **params).status_code == 200


@pytest.mark.parametrize("evil", [
    "' or '1'='1", "x'; drop table marts.fct_calls; --", '" or 1=1 --', "%", "_", "*",
    "\\", "o\u0000rg", "😀", "../../etc/passwd", "$org_0", "?", "1) or (1=1", "x" * 10_240,
])
def test_injection_looking_ids_are_just_unknown(client: httpx.Client, keys: Keys,
                                                tenants: Tenants, evil: str) -> None:
    for params in ({"organizationId": evil}, {"resellerId": evil},
                   {"organizationId": evil, "resellerId": tenants.r1},
                   {"organizationId": tenants.o1, "resellerId": evil}):
        response = ask(client, keys.platform, startDate="2025-02-10", endDate="2025-02-11",
                       **params)
        assert response.json() == NOT_FOUND, response.text
        assert response.status_code == 404
    # Nothing was dropped: the warehouse still answers.
    fine = ask(client, keys.platform, startDate=WHOLE[0], endDate=WHOLE[1])
    assert fine.status_code == 200 and fine.json()["data"]["metrics"]["totalCalls"] > 1000


def test_wrong_methods_and_paths(client: httpx.Client, keys: Keys) -> None:
    headers = {"Authorization": f"Bearer {keys.platform}"}
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        response = client.request(method, "/v1/metrics?startDate=2025-02-10&endDate=2025-02-11",
                                  headers=headers)
        assert_error(response, 405, "method_not_allowed")
        assert response.headers["allow"] == "GET"
    for path in ("/", "/v1", "/v1/metric", "/v2/metrics", "/v1/metrics/extra",
                 "/v1/metrics%00", "/" + "a" * 10_000, "/%2e%2e/%2e%2e/etc/passwd"):
        response = client.get(path, headers=headers)
        assert_error(response, 404, "not_found")


def test_etag_and_304(client: httpx.Client, keys: Keys, tenants: Tenants) -> None:
    params = {"startDate": "2025-02-12T07:13:22Z", "endDate": "2025-02-19",
              "organizationId": tenants.o1}
    first = ask(client, keys.platform, **params)
    etag = first.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    headers = {"Authorization": f"Bearer {keys.platform}"}
    for value in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = client.get("/v1/metrics", params=params, headers={**headers,
                                                                    "If-None-Match": value})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    stale = client.get("/v1/metrics", params=params,
                       headers={**headers, "If-None-Match": '"0123"'})
    assert stale.status_code == 200 and stale.json() == first.json()
    other = ask(client, keys.platform, **{**params, "endDate": "2025-02-20"})
    assert other.headers["etag"] != etag
    # A key that may not see the organization gets the 404, not a 304.
    hidden = client.get("/v1/metrics", params={**params, "organizationId": tenants.o3},
                        headers={"Authorization": f"Bearer {keys.org}", "If-None-Match": "*"})
    assert_error(hidden, 404, "not_found")


def test_openapi_and_docs_describe_everything(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/v1/metrics"]["get"]
    names = {p["name"]: p for p in operation["parameters"]}
    assert set(names) == {"startDate", "endDate", "organizationId", "resellerId", "timeZone",
                          "granularity", "compare"}
    assert names["startDate"]["required"] and names["endDate"]["required"]
    assert all(p["description"] for p in names.values())
    assert set(operation["responses"]) == {"200", "304", "400", "401", "404", "500", "503"}
    assert {"data", "meta"} <= set(json.dumps(spec["components"]["schemas"]).split('"'))
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "/healthz" in spec["paths"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert "cdn." not in docs.text  # the page works without internet
    for asset in re.findall(r'(?:href|src)="(/[^"]+)"', docs.text):
        assert client.get(asset).status_code == 200, asset


def test_access_log_has_one_line_per_request_and_no_secret(
    server: ApiServer, client: httpx.Client, keys: Keys,
) -> None:
    marker = "/v1/metrics"
    before = server.log().count(" GET /healthz ")
    ask(client, keys.reseller, startDate="2025-02-10", endDate="2025-02-11")
    ask(client, "cmk_garbled", startDate="2025-02-10", endDate="2025-02-11")
    client.get("/healthz")
    # the line is written once the response has gone out (its duration includes the sending),
    # so the client may read the log a moment before it: wait for it, at most 10 s
    deadline = time.monotonic() + 10
    while server.log().count(" GET /healthz ") <= before and time.monotonic() < deadline:
        time.sleep(0.05)
    log = server.log()
    assert log.count(" GET /healthz ") == before + 1
    reseller_id = keys.reseller.split("_")[1]
    lines = [line for line in log.splitlines() if f"GET {marker} 200" in line
             and f"key={reseller_id}" in line]
    assert lines, log[-2000:]
    assert re.search(rf"GET {marker} 401 \d+\.\dms key=-", log)
    for secret in (keys.org, keys.reseller, keys.platform):
        assert secret not in log
        assert secret.split("_", 2)[2] not in log
    assert "Traceback" not in log


# ------------------------------------------------------------------ lifecycle

def test_503_before_the_first_publish_then_served_without_restart(
    tmp_path: Path, keys: Keys, generated_warehouse: BuiltWarehouse,
) -> None:
    link = tmp_path / "warehouse" / "callmetrics.duckdb"
    with running_server(link, keys.path, tmp_path / "server.log") as api, api.client() as c:
        headers = {"Authorization": f"Bearer {keys.platform}"}
        params = {"startDate": WHOLE[0], "endDate": WHOLE[1]}
        assert_error(c.get("/v1/metrics", params=params, headers=headers), 503, "unavailable")
        assert_error(c.get("/healthz"), 503, "unavailable")
        # Bad keys and bad parameters are still told first.
        assert_error(c.get("/v1/metrics", params=params), 401, "unauthorized")
        # "Publish": point the link at a built version, as the publish step does.
        link.parent.mkdir(parents=True)
        link.symlink_to(generated_warehouse.warehouse.resolve())
        response = c.get("/v1/metrics", params=params, headers=headers)
        assert response.status_code == 200
        assert response.json()["data"]["metrics"]["totalCalls"] > 1000
        assert c.get("/healthz").status_code == 200
        assert api.stop(signal.SIGTERM) == 0
    assert "Traceback" not in api.log()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_server_gracefully(sig: int, tmp_path: Path, keys: Keys,
                                              generated_warehouse: BuiltWarehouse) -> None:
    with running_server(generated_warehouse.warehouse, keys.path, tmp_path / "s.log") as api:
        with api.client() as c:
            assert c.get("/healthz").status_code == 200
        assert api.stop(sig) == 0
    assert "Traceback" not in api.log()


def test_an_unreadable_keys_file_refuses_every_key_then_recovers(
    tmp_path: Path, keys: Keys, generated_warehouse: BuiltWarehouse,
) -> None:
    path = tmp_path / "keys.json"
    _, token = create_key(path, "platform", None)
    good = path.read_text()
    params = {"startDate": "2025-02-10", "endDate": "2025-02-11"}
    with running_server(generated_warehouse.warehouse, path, tmp_path / "s.log") as api, \
            api.client() as c:
        assert ask(c, token, **params).status_code == 200
        path.write_text("{ not json")
        body = assert_error(ask(c, token, **params), 503, "unavailable")
        assert "keys file" in body["error"]["message"] and str(path) not in body["error"]["message"]
        path.write_text(good + "\n")
        assert ask(c, token, **params).status_code == 200
    assert "Traceback" not in api.log()


def test_sigterm_lets_requests_in_flight_finish(tmp_path: Path, keys: Keys,
                                                generated_warehouse: BuiltWarehouse) -> None:
    """With one connection in the pool, requests queue in the server; SIGTERM while they are
    in flight: each gets its whole 200 answer, then the process exits 0."""
    import threading

    with running_server(generated_warehouse.warehouse, keys.path, tmp_path / "s.log",
                        "--pool-size", "1", "--cache-mb", "0") as api:
        with api.client() as c:
            assert c.get("/healthz").status_code == 200
        results: list[object] = []
        sent = threading.Barrier(7)

        def one(day: int) -> None:
            with api.client() as c:
                sent.wait()
                try:
                    results.append(ask(c, keys.platform, startDate=f"2025-02-{day:02d}",
                                       endDate="2025-03-01T12:34:56.789Z"))
                except httpx.HTTPError as exc:
                    results.append(exc)

        threads = [threading.Thread(target=one, args=(day,)) for day in range(10, 16)]
        for thread in threads:
            thread.start()
        sent.wait()
        time.sleep(0.3)  # the requests are in the server, queued for the one connection
        assert api.stop(signal.SIGTERM) == 0
        for thread in threads:
            thread.join(timeout=60)
    statuses = [r.status_code if isinstance(r, httpx.Response) else repr(r) for r in results]
    assert statuses == [200] * 6, statuses
    assert all(r.json()["data"]["metrics"]["totalCalls"] > 0 for r in results)


# ------------------------------------------------------------------ keys command

def test_keys_command_line(tmp_path: Path) -> None:
    path = tmp_path / "secret" / "keys.json"
    env_base = {**__import__("os").environ, KEYS_ENV: str(path)}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "callmetrics.cli", "keys", *args],
                              capture_output=True, text=True, env=env_base, timeout=120,
                              check=False)

    made = run("create", "--reseller", "r-9", "--name", "Acme portal")
    assert made.returncode == 0, made.stderr
    token = made.stdout.removesuffix("\n")
    assert "\n" not in token and made.stdout.endswith("\n")
    match = re.fullmatch(r"cmk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})", token)
    assert match and len(match[2]) * 6 >= 256  # a 256-bit secret
    assert token not in made.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert match[2] not in text and token not in text
    record = json.loads(text)["keys"][0]
    assert record["hash"] == __import__("hashlib").sha256(token.encode()).hexdigest()
    assert record["scope"] == "reseller" and record["scope_id"] == "r-9"
    assert run("create", "--platform").returncode == 0
    assert run("create", "--org", "o-1").returncode == 0
    listed = run("list")
    assert listed.returncode == 0
    assert match[1] in listed.stdout and "reseller r-9" in listed.stdout
    assert "Acme portal" in listed.stdout and "cmk_" not in listed.stdout
    revoked = run("revoke", match[1])
    assert revoked.returncode == 0
    row = next(line for line in run("list").stdout.splitlines() if line.startswith(match[1]))
    assert row.split()[-1].endswith("Z")  # the revocation time
    unknown = run("revoke", "feedfeedfeed")
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
    assert "Traceback" not in unknown.stderr
    both = run("create", "--org", "a", "--platform")
    assert both.returncode == 2 and "not allowed with" in both.stderr
