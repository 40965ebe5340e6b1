"""Memory of an async report job whose download is one large gzipped CSV (issue 22).

```bash
python -m benchmarks.async_download                    # 200k and 2M rows
python -m benchmarks.async_download --rows 100000,1000000
```

For each size, a gzipped CSV of that many rows is written to disk (streamed, never held in
memory), served by a small API in this process (create a job, poll it, download the file),
and a fresh process materializes a restsync spec with `endpoint.async_job` over it into its
own DuckDB file through Dagster. That process reports its peak RSS (`VmHWM`, see
`benchmarks.worker`) and the rows it loaded. Flat memory: the peak of the largest size stays
within a few MB of the smallest's, while its file is ten times larger.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
FIELDS = ("campaign_id", "day", "impressions", "clicks", "spend", "note")

CHILD = """
import sys
from pathlib import Path

from dagster import DagsterInstance, materialize

from restsync_assets import settings
from restsync_assets.definitions import build_definitions
from restsync_assets.specs import load_specs

defs = build_definitions(load_specs(settings.specs_dir()))
result = materialize(
    list(defs.assets), resources=defs.resources, instance=DagsterInstance.ephemeral(),
    raise_on_error=False,
    run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
)
import duckdb
with duckdb.connect(str(settings.duckdb_path()), read_only=True) as con:
    rows = con.execute("select count(*) from bench_reports.report").fetchone()[0]
peak = next(
    int(line.split()[1]) / 1024
    for line in Path("/proc/self/status").read_text().splitlines()
    if line.startswith("VmHWM:")
)
print("RESULT", result.success, rows, round(peak, 1), flush=True)
"""


def write_file(path: Path, rows: int) -> None:
    """A gzipped CSV of `rows` deterministic rows, written as it is generated."""
    with gzip.open(path, "wt", newline="", compresslevel=6) as out:
        writer = csv.writer(out)
        writer.writerow(FIELDS)
        for i in range(rows):
            writer.writerow(
                (i, f"2026-01-{i % 28 + 1:02d}", i * 7 % 50_000, i % 900, i % 800 + 0.25, "x" * 40)
            )


def serve(file: Path) -> ThreadingHTTPServer:
    """The API: `POST /reports` -> job 1; `GET /reports/1` -> completed; the file."""

    class Handler(BaseHTTPRequestHandler):
        def _json(self, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._json({"id": "1", "status": "pending"})

        def do_GET(self) -> None:
            if self.path == "/reports/1":
                self._json({"id": "1", "status": "completed", "files": ["/files/1.csv.gz"]})
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/gzip")
            self.send_header("Content-Length", str(file.stat().st_size))
            self.end_headers()
            with open(file, "rb") as body:
                shutil.copyfileobj(body, self.wfile, 1 << 20)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def spec(url: str) -> dict:
    return {
        "name": "bench_reports",
        "client": {"base_url": url},
        "resources": [
            {
                "name": "report",
                "write_disposition": "append",
                "schema": {"campaign_id": "integer", "impressions": "integer", "spend": "number"},
                "endpoint": {
                    "async_job": {
                        "create": {"path": "reports", "json": {"level": "campaign"}},
                        "job_id": "{{ response.id }}",
                        "poll": {"path": "reports/{job_id}", "interval": 0.1, "timeout": 60},
                        "status": "{{ response.status }}",
                        "done": ["completed"],
                        "download": {"urls": "{{ response.files }}", "response_format": "csv"},
                    }
                },
            }
        ],
    }


def measure(rows: int, workdir: Path) -> tuple[int, float, float]:
    """(rows loaded, peak RSS in MB, file size in MB) of one fresh-process run."""
    file = workdir / "report.csv.gz"
    write_file(file, rows)
    server = serve(file)
    try:
        specs = workdir / "specs"
        specs.mkdir()
        url = f"http://127.0.0.1:{server.server_address[1]}"
        (specs / "bench_reports.yaml").write_text(yaml.safe_dump(spec(url)))
        env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(REPO),
            "RESTSYNC_SPECS_DIR": str(specs),
            "RESTSYNC_DUCKDB_PATH": str(workdir / "bench.duckdb"),
            "RESTSYNC_PIPELINES_DIR": str(workdir / "pipelines"),
            "DAGSTER_HOME": str(workdir),
        }
        done = subprocess.run(
            [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=False
        )
    finally:
        server.shutdown()
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT")), None)
    if line is None:
        raise SystemExit(f"the run printed no result:\n{done.stdout}\n{done.stderr}")
    _, ok, loaded, peak = line.split()
    if ok != "True":
        raise SystemExit(f"the run failed:\n{done.stderr[-3000:]}")
    return int(loaded), float(peak), file.stat().st_size / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="200000,2000000", help="comma-separated sizes")
    args = parser.parse_args()
    print("rows      file MB (gz)  peak RSS MB  rows loaded")
    for rows in (int(r) for r in args.rows.split(",")):
        with tempfile.TemporaryDirectory() as workdir:
            loaded, peak, size = measure(rows, Path(workdir))
        print(f"{rows:<9} {size:>12.1f} {peak:>12.1f}  {loaded}", flush=True)


if __name__ == "__main__":
    main()
