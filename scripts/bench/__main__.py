"""`make bench`: Gatehouse's figures, each next to its reference, measured in one run.

Every section starts its own uvicorn process on a fresh, migrated database
(PostgreSQL at 127.0.0.1:5432 when it answers, else a temporary SQLite file)
with real argon2 costs, and drives it from a separate load-generator process.
Ratios are taken within this run only, so they hold on another machine where
absolute numbers do not. The last lines are a compact summary.

    python -m scripts.bench [--only hotpaths,login,protected,saturation,enumeration,scale,tokens]
                            [--quick] [--database auto|postgresql|sqlite] [--app-root DIR]

The targets of issue 15 close the run, each with its figure and PASS or FAIL.
`--app-root` serves (and migrates) the Gatehouse found in DIR instead of this
checkout's, for "before" figures taken by the same bench on the same machine.
"""

import argparse
import asyncio
import importlib
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

SECTIONS = ("hotpaths", "login", "protected", "saturation", "enumeration", "scale", "tokens")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run, in this order: {','.join(SECTIONS)}",
    )
    parser.add_argument("--quick", action="store_true", help="short runs, for trying it out")
    parser.add_argument("--database", choices=("auto", "postgresql", "sqlite"), default="auto")
    parser.add_argument(
        "--app-root",
        type=Path,
        default=None,
        help="serve the Gatehouse of this directory (a checkout of another commit)",
    )
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    args.sections = [name for name in SECTIONS if name in chosen]
    return args


async def _main(args: argparse.Namespace) -> int:
    # Imported only now: the caller's GATEHOUSE_* variables are gone by then, so
    # a developer's shell (say GATEHOUSE_ENV=production) cannot change what runs.
    from scripts.bench import server
    from scripts.bench.server import ROOT, BenchConfig, pg_reachable

    if args.app_root is not None:
        server.APP_ROOT = args.app_root.resolve()

    began = time.monotonic()
    backend = args.database
    note = ""
    if backend in ("auto", "postgresql"):
        if await pg_reachable():
            backend = "postgresql"
        elif args.database == "postgresql":
            print("PostgreSQL is not reachable at 127.0.0.1:5432", file=sys.stderr)
            return 2
        else:
            backend = "sqlite"
            note = (
                "  NOTE: PostgreSQL is not reachable at 127.0.0.1:5432; every section runs on "
                "a temporary SQLite FILE instead (one writer at a time: the app pins its pool "
                "to one connection). Start PostgreSQL for the figures that matter."
            )
    load = os.getloadavg()
    print(
        f"Gatehouse benchmarks - {'QUICK, ' if args.quick else ''}database: {backend}; "
        f"{os.cpu_count()} cores; Python {platform.python_version()}; "
        f"load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(
        "  Servers: one uvicorn worker each, default settings (argon2id t=3 m=64 MiB p=4, "
        "hash workers = cores, queue 64, DB pool 10+10) except GATEHOUSE_LOGIN_MAX_FAILURES, "
        "raised because all load comes from 127.0.0.1."
    )
    if note:
        print(note)
    if (ROOT / ".env").exists():
        print("  NOTE: ./.env exists and the servers read it; its settings apply to these runs.")
    print(flush=True)
    summaries: list[str] = []
    targets: list[str] = []
    failures = 0
    with tempfile.TemporaryDirectory(prefix="gatehouse-bench-") as tmp:
        config = BenchConfig(quick=args.quick, backend=backend, workdir=Path(tmp))
        for name in args.sections:
            started = time.monotonic()
            module: Any = importlib.import_module(f"scripts.bench.{name}")
            try:
                section = await module.run(config)
            except Exception as exc:
                failures += 1
                print(f"== {name}: FAILED ({type(exc).__name__}) ==")
                traceback.print_exc(file=sys.stdout)
                summaries.append(f"{name}: FAILED ({type(exc).__name__}: {exc})")
                continue
            print(section.render())
            print(f"  ({time.monotonic() - started:.0f} s)\n", flush=True)
            summaries.extend(section.summary)
            targets.extend(target.render() for target in section.targets)
            summaries.extend(f"{section.name}: PROBLEM: {p}" for p in section.problems[:5])
    print(
        f"== SUMMARY ({backend}, {os.cpu_count()} cores, "
        f"{'quick' if args.quick else 'full'} run, {time.monotonic() - began:.0f} s) =="
    )
    for line in summaries:
        print(line)
    if targets:
        where = "" if server.APP_ROOT == ROOT else f", Gatehouse from {server.APP_ROOT}"
        print(f"== TARGETS (issue 15; {backend}{where}) ==")
        for line in targets:
            print(line)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    for key in [k for k in os.environ if k.startswith("GATEHOUSE_")]:
        del os.environ[key]
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
