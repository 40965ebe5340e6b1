"""Run time: everything that runs only inside a materialization.

The asset body calls `runtime.load.load` (asset -> runtime -> dlt); `source` builds the dlt
`rest_api_source` with the paginator and auth objects `factories` makes from the spec's
models, `destination` makes the dlt destination and pipeline, `http/` is the HTTP layer
(session, retries, errors, OAuth, paginators, masking), `warehouse` reads the
destination back and `locks` keeps one writer at a time; `catalog` adds row counts to each
materialization, `progress` reports the load's counters, `preview` is `restsync preview`'s
test read. Definition-time modules
(`assets`, `checks`, `schedules`, `partitions`, `definitions`) import nothing from here at
module level.
"""
