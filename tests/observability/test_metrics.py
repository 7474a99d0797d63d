"""GET /metrics: Prometheus text for a token holding `metrics:read`, with request
counts and latency by route template and status, sign-ins by outcome, refreshes,
refresh reuse, lockouts, hasher and pool gauges; no personal data in labels."""

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from app.authz.catalogue import BUILTIN_ROLES, BUILTIN_SCOPES
from tests.factories import PASSWORD, admin_login, bearer, create_user, login, refresh

FAMILIES = {
    "gatehouse_http_requests": "counter",
    "gatehouse_http_request_duration_seconds": "histogram",
    "gatehouse_sign_ins": "counter",
    "gatehouse_refreshes": "counter",
    "gatehouse_refresh_reuse": "counter",
    "gatehouse_lockouts": "counter",
    "gatehouse_hasher_queue_depth": "gauge",
    "gatehouse_hasher_in_flight": "gauge",
    "gatehouse_db_pool_size": "gauge",
    "gatehouse_db_pool_in_use": "gauge",
}


async def scrape(
    client: httpx.AsyncClient, token: str | None = None
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    token = token or (await admin_login(client, scope="metrics:read"))["access_token"]
    response = await client.get("/metrics", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["cache-control"] == "no-store"
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return float(samples.get((name, tuple(sorted(labels.items()))), 0.0))


def test_metrics_read_is_a_builtin_scope_the_admin_role_carries():
    assert "metrics:read" in BUILTIN_SCOPES
    assert "metrics:read" in BUILTIN_ROLES["admin"][1]


async def test_metrics_need_a_token_with_metrics_read(client):
    assert (await client.get("/metrics")).status_code == 401
    _, tokens = await create_user(client)
    response = await client.get("/metrics", headers=bearer(tokens["access_token"]))
    assert response.status_code == 403
    assert 'scope="metrics:read"' in response.headers["www-authenticate"]


async def test_scrape_parses_and_holds_every_family(client):
    token = (await admin_login(client, scope="metrics:read"))["access_token"]
    response = await client.get("/metrics", headers=bearer(token))
    families = {f.name: f.type for f in text_string_to_metric_families(response.text)}
    for name, kind in FAMILIES.items():
        assert families.get(name) == kind, name


async def test_requests_are_counted_by_route_template_and_status(client):
    account, tokens = await create_user(client)
    before = await scrape(client)
    for _ in range(3):
        await client.get(f"/accounts/{account['id']}", headers=bearer(tokens["access_token"]))
    await client.get("/no/such/path")
    after = await scrape(client)
    labels = {"method": "GET", "route": "/accounts/{account_id}", "status": "403"}
    assert (
        value(after, "gatehouse_http_requests_total", **labels)
        - value(before, "gatehouse_http_requests_total", **labels)
        == 3
    )
    assert (
        value(after, "gatehouse_http_request_duration_seconds_count", **labels)
        - value(before, "gatehouse_http_request_duration_seconds_count", **labels)
        == 3
    )
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert value(after, "gatehouse_http_requests_total", **unmatched) >= 1


async def test_sign_ins_refreshes_and_reuse_are_counted(client):
    account, tokens = await create_user(client)
    before = await scrape(client)
    wrong = {"grant_type": "password", "username": account["username"], "password": "nope-nope"}
    assert (await client.post("/auth/token", data=wrong)).status_code == 400
    fresh = await login(client, account["username"], PASSWORD)
    assert (await refresh(client, fresh["refresh_token"])).status_code == 200
    assert (await refresh(client, fresh["refresh_token"])).status_code == 400  # reuse
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("gatehouse_sign_ins_total", outcome="failure") == 1
    # the login above and the admin login of the second scrape
    assert delta("gatehouse_sign_ins_total", outcome="success") == 2
    assert delta("gatehouse_refreshes_total") == 1
    assert delta("gatehouse_refresh_reuse_total") == 1


async def test_lockouts_are_counted_by_what_was_locked(make_client):
    async with make_client(login_max_failures=2) as client:
        account, _ = await create_user(client)
        # Taken first: the failures below lock this address as well.
        scraper = (await admin_login(client, scope="metrics:read"))["access_token"]
        before = await scrape(client, scraper)
        wrong = {"grant_type": "password", "username": account["username"], "password": "x" * 9}
        for _ in range(2):
            assert (await client.post("/auth/token", data=wrong)).status_code == 400
        assert (await client.post("/auth/token", data=wrong)).status_code == 429
        after = await scrape(client, scraper)
    key = ("gatehouse_lockouts_total", (("by", "account"),))
    assert after[key] - before.get(key, 0) == 1


async def test_no_label_carries_a_name_token_or_address(client):
    account, tokens = await create_user(client)
    await client.get(f"/accounts/{account['id']}", headers=bearer(tokens["access_token"]))
    await client.get(
        "/accounts/me?q=" + account["username"], headers=bearer(tokens["access_token"])
    )
    samples = await scrape(client)
    label_values = {v for _, labels in samples for _, v in labels}
    for secret in (account["id"], account["username"], tokens["access_token"], "127.0.0.1"):
        assert not any(secret in v for v in label_values), secret


async def test_gauges_describe_the_hasher_and_the_pool(client):
    state = client.app.state.gatehouse
    if state.settings.is_sqlite:
        # SQLite's pool has one connection, and the scrape's own request holds it.
        samples = await scrape(client)
    else:
        # On PostgreSQL a request that only reads holds no pooled connection (its
        # one statement runs in autocommit), so the test holds one itself.
        async with state.engine.connect() as held:
            await held.execute(text("SELECT 1"))
            samples = await scrape(client)
    assert value(samples, "gatehouse_hasher_workers") == state.hasher.workers
    assert value(samples, "gatehouse_hasher_queue_depth") == 0
    assert value(samples, "gatehouse_db_pool_in_use") >= 1
    assert value(samples, "gatehouse_db_pool_size") >= 1
