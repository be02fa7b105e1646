"""The router: the stable endpoint of a ModelDeployment, splitting traffic between its variants.

Pure parts (`routes` parsing, the per-request `policy`, the `feedback` ledger, the per-variant
`tally`) are kept apart from input/output (`sources` for the ConfigMap watch and the routes file,
`app` for HTTP), so the statistics of a split are tested without sockets.
"""
