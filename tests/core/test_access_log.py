"""Query strings never reach the log (CONTRACT.md, Guardrails): a token sent
where it does not belong, `?access_token=...`, must not be written down by
uvicorn's access log, which scripts/run.sh and the Dockerfile leave on."""

import httpx

from tests.conftest import migrate
from tests.servers import serve, server_env

SECRET = "eyJhbGciOiJSUzI1NiJ9.leaked-token-in-a-query-string"


def test_the_access_log_names_the_path_but_never_the_query_string(
    tmp_path, sqlite_database_factory
):
    url = sqlite_database_factory()
    migrate(url)
    log_path = tmp_path / "uvicorn.log"
    with (
        serve(server_env(url, tmp_path / "data"), log_path=log_path, access_log=True) as base,
        httpx.Client(base_url=base, timeout=10, trust_env=False) as http,
    ):
        assert http.get("/healthz", params={"access_token": SECRET}).status_code == 200
        assert http.get("/accounts/me", params={"access_token": SECRET}).status_code == 401
    log = log_path.read_text(errors="replace")

    assert '"GET /healthz HTTP/1.1" 200' in log, log
    assert '"GET /accounts/me HTTP/1.1" 401' in log, log
    assert SECRET not in log
    assert "access_token" not in log
