"""Run time: everything that runs only inside a materialization (or an asset check's run).

The asset body calls `runtime.load.load` (asset -> runtime -> dlt); `source` builds the dlt
`rest_api_source` with the paginator and auth objects `factories` makes from the spec's
models, `destination` makes the dlt destination and pipeline, `http/` is the HTTP layer
(session, retries, errors, OAuth, paginators, masking), `window` is a partitioned run's time
window and `locks` keeps one writer at a time; `catalog` adds row counts to each
materialization, `progress` reports the load's counters. The asset checks' body calls
`runtime.checks.evaluate_checks`, which reads the destination back through `warehouse`.

Nothing here imports a definition-time module (`assets`, `checks`, `schedules`,
`partitions`, `metadata`, `definitions`, `dg_definitions`, `component`, `executors`) or the
command line (`cli/`); what both halves need is in `keys`, `check_kinds`, `resources`,
`settings`, `text` and `specs/` (`restsync_assets_tests/test_asset_graph.py` reads the
imports). Definition-time modules import nothing from here at module level.
"""
