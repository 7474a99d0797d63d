"""Running the `gatehouse` command (as `python -m app.cli`, the console script's
entry point) in a clean environment: no GATEHOUSE_ variable but the ones given,
an empty working directory so no `.env` joins in."""

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

GATEHOUSE = [sys.executable, "-m", "app.cli"]


def clean_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env["PYTHONPATH"] = str(ROOT)
    env["GATEHOUSE_DATA_DIR"] = str(tmp_path / "data")
    env.update(variables)
    return env


def run(
    args: list[str], env: dict[str, str], *, cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def gatehouse(tmp_path: Path, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return run([*GATEHOUSE, *args], clean_env(tmp_path, **variables), cwd=tmp_path)
