"""The one layer that talks to MLflow: clients, the model registry, aliases, tags and profiles.

Everything above it (lifecycle, CLI, operator) goes through these modules, so MLflow's exceptions
are mapped to `modelpilot.errors` in one place (`client.mapped_errors`).
"""
