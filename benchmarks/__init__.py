"""restsync benchmarks (issue 5): restsync vs raw requests and plain dlt, side by side.

`python -m benchmarks` starts a local API, runs cases P1-P5 alternating restsync and its
baselines, prints the table and writes `out/results.json`, `out/results.png` and
`RESULTS.md`. See `benchmarks/README.md`.
"""
