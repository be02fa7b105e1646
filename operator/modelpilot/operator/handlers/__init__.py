"""kopf handler modules. Each exposes `register(registry, *, settings, metrics)`.

Handlers are registered into an explicit `kopf.OperatorRegistry` (not kopf's global one at import
time) so that the settings, such as the resync interval of the timers, are known when the handlers
are declared, and tests can build a fresh operator per test.
"""
