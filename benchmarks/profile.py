"""cProfile of restsync's own path in each case, the evidence behind `benchmarks/README.md`.

`python -m benchmarks.profile [--records N] [--parents N] [--out DIR]` writes
`profile_p1.txt` (one Dagster materialize of N records), `profile_p2.txt` (child extraction
with `client.concurrency: 20`) and `profile_p3.txt` (30 specs / 300 resources to
`Definitions`): the functions with the most own time, then by cumulative time. Profiling
slows Python code down (about 2x), so read shares, not seconds.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import tempfile
from pathlib import Path

from benchmarks import measure, specs
from benchmarks.runner import DEFAULT_OUT
from benchmarks.server import ServerProcess


def _write(profile: cProfile.Profile, path: Path, title: str) -> None:
    stream = io.StringIO()
    stats = pstats.Stats(profile, stream=stream)
    stats.sort_stats("tottime").print_stats(35)
    stats.sort_stats("cumulative").print_stats(70)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {title}\n\n{stream.getvalue()}", encoding="utf-8")
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--parents", type=int, default=200)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="restsync-profile-"))
    with ServerProcess() as server:
        # P1: one materialize
        spec_dir = scratch / "p1"
        specs.write_spec(spec_dir, specs.records_spec("bench_p1", server.url, args.records))
        measure.raw_fetch(server.url, f"/records/{args.records}")
        with measure.restsync_env(spec_dir, scratch / "p1w"):
            defs = measure.restsync_definitions(spec_dir)
            profile = cProfile.Profile()
            profile.enable()
            out = measure.restsync_materialize(defs)
            profile.disable()
        _write(
            profile,
            args.out / "profile_p1.txt",
            f"P1 restsync materialize {args.records:,} records: {out}",
        )
        # P2: child extraction with client.concurrency 20
        spec_dir = scratch / "p2"
        specs.write_spec(spec_dir, specs.fanout_spec("bench_p2", server.url, args.parents, 50, 20))
        profile = cProfile.Profile()
        profile.enable()
        out = measure.restsync_extract(spec_dir, scratch / "p2w", "bench_p2", "children")
        profile.disable()
        _write(profile, args.out / "profile_p2.txt", f"P2 restsync child extraction: {out}")
    # P3: 300 resources to Definitions (second call in this process: imports excluded)
    spec_dir, config_dir = scratch / "p3", scratch / "p3c"
    specs.write_generated_specs(spec_dir, config_dir, 30, 10)
    measure.restsync_definitions(spec_dir)
    profile = cProfile.Profile()
    profile.enable()
    measure.restsync_definitions(spec_dir)
    profile.disable()
    _write(
        profile,
        args.out / "profile_p3.txt",
        "P3 restsync build_definitions(load_specs(300 resources))",
    )
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
