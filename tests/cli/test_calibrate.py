"""`gatehouse calibrate` measures argon2id here and prints settings that meet the
target time (kept small so the test is quick)."""

from pathlib import Path

from app.cli.calibrate import calibrate
from tests.cli.helpers import gatehouse


def test_calibrate_prints_settings_that_take_at_least_the_target(tmp_path: Path) -> None:
    result = gatehouse(
        tmp_path, "calibrate", "--target-ms", "20", "--memory-kib", "4096", "--parallelism", "1"
    )
    assert result.returncode == 0, result.stderr
    settings = dict(
        line.split("=", 1) for line in result.stdout.splitlines() if line.startswith("GATEHOUSE_")
    )
    assert set(settings) == {
        "GATEHOUSE_ARGON2_TIME_COST",
        "GATEHOUSE_ARGON2_MEMORY_KIB",
        "GATEHOUSE_ARGON2_PARALLELISM",
    }
    assert settings["GATEHOUSE_ARGON2_MEMORY_KIB"] == "4096"
    assert int(settings["GATEHOUSE_ARGON2_TIME_COST"]) >= 1


def test_the_chosen_cost_is_the_cheapest_measured_at_or_above_the_target() -> None:
    taken = calibrate(target=0.015, memory_kib=2048, parallelism=1, rounds=1)
    chosen = taken[-1]
    assert chosen.seconds >= 0.015 or chosen.time_cost == 1
    below = [m for m in taken if m.time_cost == chosen.time_cost - 1]
    assert all(m.seconds < 0.015 for m in below)


def test_memory_is_halved_when_one_pass_is_already_too_slow() -> None:
    taken = calibrate(target=0.000001, memory_kib=80 * 1024, parallelism=1, rounds=1)
    assert [m.memory_kib for m in taken] == [80 * 1024, 40 * 1024, 20 * 1024, 19 * 1024]
    assert taken[-1].time_cost == 1
