"""Property-based fuzzing (issue 7): schemathesis generates valid and invalid
requests for every operation of the service's own OpenAPI document and sends them,
with a valid admin token, to the app served by a real uvicorn process on each
database. No answer may be a 5xx."""

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from app.core.config import Settings
from app.main import create_app
from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, TEST_SECRET, migrate
from tests.servers import serve, server_env

pytestmark = pytest.mark.slow

# Per operation, on top of the schema-driven coverage cases; keeps one backend's
# run near half a minute on two cores (the issue allows it up to three).
MAX_EXAMPLES = 100


# The fuzzer fails logins and signs up by the thousand from one address; throttling
# would turn the rest of the run into 429s (it is tested elsewhere).
UNTHROTTLED = {
    "GATEHOUSE_LOGIN_MAX_FAILURES": "1000000",
    "GATEHOUSE_SIGNUP_MAX_PER_HOUR": "1000000",
}


class FuzzTarget:
    """The served app, an admin token for it, and how many requests were sent."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.requests = 0
        self.statuses: Counter[int] = Counter()
        self.token = ""
        self.login()

    def login(self) -> None:
        response = httpx.post(
            f"{self.base}/auth/token",
            data={
                "grant_type": "password",
                "username": ADMIN_USERNAME,
                "password": ADMIN_PASSWORD,
            },
            timeout=10,
        )
        assert response.status_code == 200, response.text
        self.token = response.json()["access_token"]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def _own_openapi_document() -> dict[str, Any]:
    """The document the app serves at /openapi.json (building it needs no database)."""
    app = create_app(
        Settings(
            _env_file=None,
            database_url="sqlite+aiosqlite:///:memory:",
            secret_key=TEST_SECRET,
            docs_enabled=True,
        )
    )
    return app.openapi()


OPENAPI = _own_openapi_document()
schema = schemathesis.openapi.from_dict(OPENAPI)
schema.config.generation.update(max_examples=MAX_EXAMPLES)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzz_target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzTarget]:
    """One served app per backend for the whole fuzz run, on a fresh database."""
    backend = request.param
    factory = request.getfixturevalue(
        "pg_database_factory" if backend == "postgresql" else "sqlite_database_factory"
    )
    database_url = factory()
    migrate(database_url)
    started = time.monotonic()
    data_dir = tmp_path_factory.mktemp(f"fuzz-{backend}")
    env = server_env(database_url, data_dir, **UNTHROTTLED)
    with serve(env, log_path=data_dir / "uvicorn.log") as base:
        target = FuzzTarget(base)
        served = httpx.get(f"{base}/openapi.json", timeout=10).json()
        assert served == OPENAPI, "the fuzzed document is not the one the app serves"
        yield target
    # The count of requests is part of the report: print it past capture.
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(
                f"fuzz[{backend}]: {target.requests} requests in "
                f"{time.monotonic() - started:.0f} s; statuses {sorted(target.statuses.items())}"
            )


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@schema.parametrize()
def test_no_generated_request_gets_a_server_error(
    case: schemathesis.Case[Any], fuzz_target: FuzzTarget
) -> None:
    response = case.call(base_url=fuzz_target.base, headers=fuzz_target.headers, timeout=15)
    fuzz_target.requests += 1
    fuzz_target.statuses[response.status_code] += 1
    if case.operation.path == "/auth/logout" and response.status_code == 204:
        fuzz_target.login()  # the fuzzer just ended the admin's session
    case.validate_response(response, checks=[not_a_server_error])
