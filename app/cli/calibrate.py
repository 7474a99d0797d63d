"""`gatehouse calibrate`: the argon2id cost that takes a target time on this
machine (as Ory Kratos's `hashers argon2 calibrate` does). Memory and lanes stay
as chosen, since they decide what a burst of logins costs in RAM; the time cost
grows until one hash takes the target. When even one pass is slower than the
target, memory is halved down to OWASP's floor of 19 MiB."""

import math
import os
from dataclasses import dataclass

from app.crypto.passwords import hash_seconds

OWASP_MIN_MEMORY_KIB = 19 * 1024


@dataclass(frozen=True, slots=True)
class Measurement:
    time_cost: int
    memory_kib: int
    parallelism: int
    seconds: float


def measure(time_cost: int, memory_kib: int, parallelism: int, rounds: int) -> Measurement:
    seconds = hash_seconds(
        time_cost=time_cost, memory_kib=memory_kib, parallelism=parallelism, rounds=rounds
    )
    return Measurement(time_cost, memory_kib, parallelism, seconds)


def calibrate(
    *, target: float, memory_kib: int, parallelism: int, rounds: int = 3
) -> list[Measurement]:
    """Measurements taken, the last one being the cost to use: the cheapest time
    cost whose median hash takes at least `target` seconds (or the cheapest cost
    at all when even that is slower)."""
    taken = [measure(1, memory_kib, parallelism, rounds)]
    while taken[-1].seconds > target and taken[-1].memory_kib > OWASP_MIN_MEMORY_KIB:
        memory_kib = max(OWASP_MIN_MEMORY_KIB, memory_kib // 2)
        taken.append(measure(1, memory_kib, parallelism, rounds))
    if taken[-1].seconds >= target:
        return taken
    # Time grows about linearly with passes: estimate, then step to the boundary.
    time_cost = max(2, math.ceil(target / taken[-1].seconds))
    taken.append(measure(time_cost, memory_kib, parallelism, rounds))
    while taken[-1].seconds < target:
        time_cost += 1
        taken.append(measure(time_cost, memory_kib, parallelism, rounds))
    while time_cost > 1:
        cheaper = measure(time_cost - 1, memory_kib, parallelism, rounds)
        if cheaper.seconds < target:
            break
        time_cost -= 1
        taken.append(cheaper)
    return taken


def report(taken: list[Measurement], *, target: float, workers: int) -> list[str]:
    chosen = taken[-1]
    lines = [f"Measured on this machine ({os.cpu_count()} cores), median of each:"]
    lines += [
        f"  t={m.time_cost} m={m.memory_kib} KiB p={m.parallelism}: {m.seconds * 1000:.0f} ms"
        for m in taken
    ]
    if chosen.seconds < target:
        lines.append(f"No cost reaches {target * 1000:.0f} ms; the dearest measured is above.")
    lines += [
        "",
        f"Settings for about {target * 1000:.0f} ms per hash ({chosen.seconds * 1000:.0f} ms):",
        f"GATEHOUSE_ARGON2_TIME_COST={chosen.time_cost}",
        f"GATEHOUSE_ARGON2_MEMORY_KIB={chosen.memory_kib}",
        f"GATEHOUSE_ARGON2_PARALLELISM={chosen.parallelism}",
        "",
        f"With {workers} hash worker(s) one instance checks about "
        f"{workers / chosen.seconds:.1f} passwords per second and holds up to "
        f"{workers * chosen.memory_kib // 1024} MiB for hashing. Existing hashes keep "
        "verifying; each is upgraded at its account's next login.",
    ]
    return lines
