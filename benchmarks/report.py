"""Results out: the printed table, `results.json`, a PNG bar chart and `RESULTS.md`."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.cases import Config, Row
from benchmarks.server import REPO_ROOT

#: hand-written reading of the latest full run (what limits each target not met), appended
FINDINGS = REPO_ROOT / "benchmarks" / "FINDINGS.md"
PACKAGES = ("dlt", "dagster", "dagster-dlt", "duckdb", "pyarrow", "orjson", "requests")


def git_state() -> str | None:
    """`<short commit>` of the repo, `+ uncommitted changes` if files outside benchmarks/ differ."""
    return _git()


def machine() -> dict[str, Any]:
    """nproc, CPU model, RAM, Python and library versions, date, git commit."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "cpu": cpu,
        "ram_gb": ram_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "git": _git(),
    }


def _git() -> str | None:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(  # the benchmark's own files do not count
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!benchmarks"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}{' + uncommitted changes' if dirty else ''}" if head else None


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "records/s":
        return f"{value:,.0f} rec/s"
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    if unit == "MB":
        return f"{value:,.0f} MB"
    if unit == "requests":
        return f"{value:.0f}"
    return f"{value:g}"


def verdict(row: Row) -> str:
    if row.passed is None:
        return "info"
    return "PASS" if row.passed else "FAIL"


def table_rows(rows: list[Row]) -> list[list[str]]:
    out = []
    for row in rows:
        baseline = fmt(row.baseline, row.unit)
        if row.baseline_name:
            baseline = (
                f"{baseline} ({row.baseline_name})"
                if row.baseline is not None
                else row.baseline_name
            )
        out.append(
            [
                f"{row.case} {row.name}",
                baseline,
                fmt(row.restsync, row.unit) if row.unit else "equal" if row.passed else "differs",
                "-" if row.ratio is None else f"{row.ratio:.2f}x",
                row.target,
                verdict(row),
            ]
        )
    return out


HEADER = ["case", "baseline", "restsync", "ratio", "target", "result"]


def text_table(rows: list[Row]) -> str:
    body = table_rows(rows)
    widths = [min(60, max(len(r[i]) for r in [HEADER, *body])) for i in range(len(HEADER))]
    lines = []
    for r in [HEADER, ["-" * w for w in widths], *body]:
        lines.append("  ".join(cell[: widths[i]].ljust(widths[i]) for i, cell in enumerate(r)))
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in table_rows(rows):
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |")
    return "\n".join(lines)


def write_json(
    path: Path, rows: list[Row], config: Config, info: dict[str, Any], wall: float
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "machine": info,
        "config": {k: v for k, v in vars(config).items()},
        "wall_seconds": wall,
        "cases": sorted({r.case for r in rows}),
        "rows": [r.to_dict() for r in rows],
    }
    path.write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")


def write_png(path: Path, rows: list[Row]) -> str:
    """One small bar chart per row (baseline vs restsync, target line); needs matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return 'PNG skipped: matplotlib is not installed (pip install -e ".[bench]")'
    plotted = [r for r in rows if r.restsync is not None]
    cols = 4
    nrows = max(1, -(-len(plotted) // cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.2 * nrows), squeeze=False)
    for ax in axes.flat[len(plotted) :]:
        ax.axis("off")
    for ax, row in zip(axes.flat, plotted, strict=False):
        labels, values, colors = [], [], []
        if row.baseline is not None:
            labels.append("baseline")
            values.append(row.baseline)
            colors.append("#9e9e9e")
        labels.append("restsync")
        values.append(row.restsync)
        colors.append({True: "#2e7d32", False: "#c62828", None: "#1565c0"}[row.passed])
        ax.bar(labels, values, color=colors)
        limit = _target_value(row)
        if limit is not None:
            ax.axhline(limit, color="black", linestyle="--", linewidth=1, label="target")
            ax.legend(fontsize=7, loc="upper right")
        title = f"{row.case} {row.name}"
        ax.set_title(title if len(title) < 48 else title[:46] + "...", fontsize=8)
        ax.set_ylabel(row.unit, fontsize=8)
        ax.tick_params(labelsize=8)
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}x  "
        ax.text(
            0.02,
            0.95,
            f"{ratio}{verdict(row)}  target {row.target}",
            transform=ax.transAxes,
            fontsize=7,
            va="top",
        )
    fig.suptitle(
        "restsync benchmark (baseline grey; restsync green = pass, red = fail)", fontsize=10
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"wrote {path}"


def _target_value(row: Row) -> float | None:
    """The target as a value on the row's own axis (absolute targets, or ratio x baseline)."""
    import re

    match = re.search(
        r"([\d,.]+)\s*(x|s|MB|records/s)?", row.target.replace(">=", "").replace("<=", "")
    )
    if not match or row.unit == "":
        return None
    number = float(match.group(1).replace(",", ""))
    if match.group(2) == "x":
        return number * row.baseline if row.baseline is not None else None
    return number


def write_markdown(
    path: Path, rows: list[Row], config: Config, info: dict[str, Any], wall: float, png: str
) -> None:
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v)
    lines = [
        "# restsync benchmark results",
        "",
        "Generated by `python -m benchmarks` (issues 5 and 13); do not edit by hand, re-run it "
        "(the last section comes from `benchmarks/FINDINGS.md`, written after reading a run).",
        "",
        f"- date: {info['date']}, mode: {config.mode}, seed {config.seed}, "
        f"k = {config.k} repetitions (median, restsync and baselines alternated), "
        f"whole run {wall:.0f} s",
        f"- machine: {info['nproc']} cores ({info['cpu']}), {info['ram_gb']} GB RAM, "
        f"Python {info['python']} on {info['platform']}",
        f"- versions: {versions}",
        f"- code: {info['git']}",
        f"- machine load (1-min load average) at start {info['loadavg_1min']['start']}, at end "
        f"{info['loadavg_1min']['end']}: other processes share these cores, so compare the "
        "side-by-side ratios rather than absolute times",
        "",
        markdown_table(rows),
        "",
        "## Notes per row",
        "",
    ]
    for row in rows:
        if row.notes:
            lines.append(f"- **{row.case} {row.name}**: " + "; ".join(row.notes))
    for row in rows:
        profile = row.samples.get("profile") if isinstance(row.samples, dict) else None
        if profile:
            lines += [
                "",
                f"### Profile of {row.case} (a separate fresh process, cProfile, top by "
                "cumulative time)",
                "",
                "```text",
                profile,
                "```",
            ]
    if FINDINGS.exists():
        lines += ["", FINDINGS.read_text(encoding="utf-8").strip()]
    lines += [
        "",
        "Raw samples: `benchmarks/out/results.json`; chart: `benchmarks/out/results.png`"
        + ("" if png.startswith("wrote") else f" ({png})")
        + ". What limits each target that is not met, and what would reach it: "
        "`benchmarks/README.md` and the findings above.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def rerender(results_json: Path, results_md: Path) -> None:
    """RESULTS.md again from a run's `results.json` (e.g. after editing FINDINGS.md): the same
    rows, config and machine facts, nothing measured anew."""
    doc = json.loads(results_json.read_text(encoding="utf-8"))
    fields = set(Config.__dataclass_fields__)
    config = Config(**{k: v for k, v in doc["config"].items() if k in fields})
    rows = [Row(**row) for row in doc["rows"]]
    png = "wrote" if (results_json.parent / "results.png").exists() else "PNG not written"
    write_markdown(results_md, rows, config, doc["machine"], doc["wall_seconds"], png)


if __name__ == "__main__":  # python -m benchmarks.report [results.json] [RESULTS.md]
    import sys

    here = REPO_ROOT / "benchmarks"
    args = [Path(a) for a in sys.argv[1:]]
    rerender(
        args[0] if args else here / "out" / "results.json",
        args[1] if len(args) > 1 else here / "RESULTS.md",
    )
