"""Section 4: can login timing tell an unknown username from a wrong password? (issue 7)

An unknown username must cost the same argon2 work as a wrong password, or the
response time enumerates accounts. Sequential logins, the kinds interleaved
request by request so drift on a shared machine hits each kind alike: unknown
usernames (a fresh one every time), a wrong password for a real account, and
the right password for a disabled account. The contract also wants the three
answers byte-identical; the bodies are compared too.
"""

import secrets
from typing import Any

import httpx

from scripts.bench.load import run_load
from scripts.bench.report import Section, ms, pct, ratio, statuses
from scripts.bench.server import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    BenchConfig,
    login,
    seed,
    temp_database,
    uvicorn_server,
)
from scripts.seed_accounts import DEFAULT_PASSWORD, bench_username

TOLERANCE = 0.10
WRONG_PASSWORD = "definitely-not-the-password"  # noqa: S105 - a deliberate failure


def _attempt(label: str, username: str, password: str) -> dict[str, Any]:
    return {
        "label": label,
        "method": "POST",
        "path": "/auth/token",
        "form": {"grant_type": "password", "username": username, "password": password},
    }


async def _disable(base_url: str, username: str) -> None:
    token = await login(base_url, ADMIN_USERNAME, ADMIN_PASSWORD)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:
        found = (await client.get("/accounts", params={"q": username, "limit": 1})).json()
        account_id = found["items"][0]["id"]
        response = await client.patch(f"/accounts/{account_id}", json={"is_active": False})
        response.raise_for_status()


async def run(config: BenchConfig) -> Section:
    each = config.pick(30, 10)
    requests: list[dict[str, Any]] = []
    for _ in range(each + 1):  # one round more: the first is warm-up
        requests += [
            _attempt("unknown user", f"nobody_{secrets.token_hex(6)}", WRONG_PASSWORD),
            _attempt("wrong password", bench_username(1), WRONG_PASSWORD),
            _attempt("disabled account", bench_username(2), DEFAULT_PASSWORD),
        ]
    async with temp_database(config.backend, config.workdir) as db:
        await seed(db, 2)
        async with uvicorn_server(db, config.workdir) as server:
            await _disable(server.base_url, bench_username(2))
            result = await run_load(
                {
                    "base_url": server.base_url,
                    "mode": "sequential",
                    "count": 3 * each,
                    "warmup_count": 3,
                    "keep_bodies": True,
                    "requests": requests[3:] + requests[:3],
                }
            )
            problems = server.problems()
    section = Section(
        "enumeration",
        f"4. Login timing by kind of failure (sequential, {each} each, interleaved)",
        ["kind", "median", "p90", "statuses", "vs wrong password"],
    )
    section.problems.extend(problems)
    labels = result["labels"]
    wrong = labels["wrong password"]
    # Failures are 400s, so time every answer, not just the 2xx ones.
    medians: dict[str, float | None] = {}
    for kind in ("unknown user", "wrong password", "disabled account"):
        stats = labels[kind]
        medians[kind] = stats["answered_ms"]["p50"] if stats["answered_ms"] else None
    base = medians["wrong password"]
    for kind, median in medians.items():
        stats = labels[kind]
        section.add(
            kind,
            ms(median),
            ms(stats["answered_ms"]["p90"] if stats["answered_ms"] else None),
            statuses(stats["status"]),
            ratio(median / base) if median and base else "-",
        )
    bodies = {kind: {(st, body) for st, body, _ in labels[kind]["bodies"]} for kind in medians}
    identical = len({frozenset(b) for b in bodies.values()}) == 1 and all(
        len(b) == 1 for b in bodies.values()
    )
    unknown = medians["unknown user"]
    gap = abs(unknown / base - 1) if unknown and base else None
    within = gap is not None and gap <= TOLERANCE
    section.notes.append(
        f"unknown/wrong = {ratio(unknown / base if unknown and base else None)} "
        f"(|difference| {pct(gap)}; must be within {TOLERANCE:.0%}: "
        f"{'yes' if within else 'NO'}); answers byte-identical (status and body) across "
        f"the three kinds: {'yes' if identical else 'NO'}."
    )
    if not within:
        section.problems.append(f"unknown-user median differs from wrong-password by {pct(gap)}")
    if not identical:
        section.problems.append(f"answers differ: {bodies}")
    if wrong["status"].keys() - {"400"}:
        section.problems.append(f"wrong-password statuses {statuses(wrong['status'])}")
    disabled = medians["disabled account"]
    section.summary.append(
        f"enumeration: median unknown user {ms(unknown)} vs wrong password {ms(base)} = "
        f"{ratio(unknown / base if unknown and base else None)} (within 10%: "
        f"{'yes' if within else 'NO'}); disabled account {ms(disabled)}; identical answers: "
        f"{'yes' if identical else 'NO'}"
    )
    return section
