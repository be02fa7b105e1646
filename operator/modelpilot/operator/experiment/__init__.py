"""The Experiment controller's logic: spec parsing, counter bookkeeping and the pure decision.

Everything in this package except `sources` is pure (numpy/scipy and `modelpilot.stats` only), so
the whole control loop can be replayed in a unit test; `sources` is the one module here that does
I/O (the routers' `/stats` JSON and the Prometheus HTTP API).
"""
