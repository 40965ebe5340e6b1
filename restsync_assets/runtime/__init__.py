"""Run time: everything that runs only inside a materialization.

The asset body calls `runtime.load.load` (asset -> runtime -> dlt); `source` builds the dlt
`rest_api_source`, `http/` is the HTTP layer (session and retries, OAuth, paginators,
templates, masking), `warehouse` reads and locks the destination. Definition-time modules
(`assets`, `checks`, `schedules`, `partitions`, `definitions`) import nothing from here at
module level.
"""
