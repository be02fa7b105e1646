"""The ML lifecycle on MLflow: tracking, sweeps, model cards, data validation and the CI gate.

Pure decisions (thresholds, schema checks, sweep configs) are kept apart from the MLflow calls,
which all go through `modelpilot.registry`.
"""
