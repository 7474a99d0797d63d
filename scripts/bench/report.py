"""How a benchmark section reports: a table, notes, and the lines of the summary.

Figures are formatted here once, so every section prints them the same way.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Target:
    """One target of issue 15: what was measured, against what bound, and whether
    it was met (None when the figure could not be taken)."""

    name: str
    figure: str
    bound: str
    met: bool | None

    def render(self) -> str:
        verdict = {True: "PASS", False: "FAIL", None: "N/A "}[self.met]
        return f"{verdict}  {self.name}: {self.figure} (target {self.bound})"


def at_least(name: str, value: float | None, bound: float, shown: str, bound_shown: str) -> Target:
    return Target(name, shown, f">= {bound_shown}", None if value is None else value >= bound)


def at_most(name: str, value: float | None, bound: float, shown: str, bound_shown: str) -> Target:
    return Target(name, shown, f"<= {bound_shown}", None if value is None else value <= bound)


@dataclass
class Section:
    name: str
    title: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        self.rows.append([str(c) for c in cells])

    def render(self) -> str:
        lines = [f"== {self.title} =="]
        if self.columns:
            widths = [len(c) for c in self.columns]
            for row in self.rows:
                widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=False)]

            def line(cells: list[str]) -> str:
                return "  ".join(
                    cell.ljust(w) if i == 0 else cell.rjust(w)
                    for i, (cell, w) in enumerate(zip(cells, widths, strict=False))
                ).rstrip()

            lines.append(line(self.columns))
            lines.append("  ".join("-" * w for w in widths))
            lines.extend(line(row) for row in self.rows)
        lines.extend(f"  {note}" for note in self.notes)
        lines.extend(f"  PROBLEM: {problem}" for problem in self.problems)
        return "\n".join(lines)


def ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} ms" if value >= 10 else f"{value:.2f} ms"


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} µs" if seconds >= 1e-4 else f"{seconds * 1e6:.1f} µs"


def rate(value: float | None, unit: str = "/s") -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}{unit}" if value >= 100 else f"{value:.2f}{unit}"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:.0f} MiB"


def statuses(counts: dict[str, int]) -> str:
    return " ".join(f"{k}:{v}" for k, v in sorted(counts.items())) or "-"
