"""The ModelDeployment CRD: serve one registered model behind a stable endpoint, and watch it.

Design decision: every constraint a user can break by hand is checked by the API server (OpenAPI
bounds for single fields, CEL for cross-field rules, each message naming the field), so a bad spec
is refused at `kubectl apply` instead of surfacing later as a Degraded condition.
"""

from __future__ import annotations

from modelpilot.api import common
from modelpilot.api import schema as s

KIND = "ModelDeployment"
PLURAL = "modeldeployments"

DRIFT_METHODS = ["psi", "ks", "js", "nullRate"]

# Five cron fields (minute hour day-of-month month day-of-week), each a list of `*`, numbers,
# ranges, steps, or three-letter month/day names; or one of CronJob's @-macros (robfig/cron).
_CRON_FIELD = "(\\*|[0-9A-Za-z]{1,3}(-[0-9A-Za-z]{1,3})?)(/[0-9]{1,2})?"
_CRON_LIST = f"{_CRON_FIELD}(,{_CRON_FIELD})*"
CRON_REGEX = (
    f"^(@(yearly|annually|monthly|weekly|daily|hourly)|{_CRON_LIST}(\\s+{_CRON_LIST}){{4}})$"
)


def _pods(description: str, *, component: str, replicas: str) -> s.Schema:
    """How one component's pods run (model server or router): count, image and resources."""
    return s.obj(
        description,
        {
            "replicas": s.integer(replicas, default=1, minimum=0, maximum=100),
            "image": s.string(
                f"{component.capitalize()} container image; the operator's default when omitted.",
                min_length=1,
                max_length=512,
            ),
            "resources": common.resources(f"Compute resources of each {component} pod."),
        },
        default={},
    )


def _spec() -> s.Schema:
    return s.obj(
        "Desired state: which model to serve, how, and how to watch it for drift.",
        {
            "model": common.model_reference(
                "The registered model to serve, by alias or by version (exactly one)."
            ),
            "registry": s.obj(
                "Where the model registry lives; the operator's default when omitted.",
                {
                    "trackingUri": s.string(
                        "MLflow tracking server URI (http or https).",
                        pattern="^https?://[^\\s]+$",
                        max_length=2048,
                    )
                },
            ),
            "serving": _pods(
                "How the model server pods run.",
                component="model-server",
                replicas="Model-server pods for the stable variant.",
            ),
            "router": _pods(
                "How the router (the stable endpoint) runs.",
                component="router",
                replicas="Router pods.",
            ),
            "drift": s.obj(
                "Drift monitoring; omitted means no drift CronJob.",
                {
                    "schedule": s.string(
                        "Cron schedule of the drift job (five fields, e.g. `*/30 * * * *`).",
                        default="*/30 * * * *",
                        min_length=1,
                        max_length=128,
                    ),
                    "methods": s.array(
                        "Drift statistics to compute.",
                        s.string("A drift statistic.", enum=DRIFT_METHODS, max_length=16),
                        max_items=4,
                        min_items=1,
                        list_type="set",
                    ),
                    "psiThreshold": s.number(
                        "PSI at or above which a feature counts as drifted (0.2 = significant).",
                        default=0.2,
                        minimum=0,
                        exclusive_minimum=True,
                        maximum=10,
                    ),
                    "ksPValue": s.number(
                        "KS p-value below which a feature counts as drifted "
                        "(after Benjamini-Hochberg).",
                        default=0.01,
                        minimum=0,
                        exclusive_minimum=True,
                        maximum=1,
                        exclusive_maximum=True,
                    ),
                    "bins": s.integer(
                        "Bins per numeric feature (at the reference quantiles).",
                        default=10,
                        minimum=2,
                        maximum=100,
                    ),
                    "suspend": s.boolean("Pause the drift CronJob.", default=False),
                },
                rules=[
                    s.rule(
                        f"self.schedule.matches(r'{CRON_REGEX}')",
                        "schedule must be a cron expression of five fields "
                        "(minute hour day-of-month month day-of-week), e.g. '*/30 * * * *'",
                        field_path=".schedule",
                    )
                ],
            ),
        },
        required=["model"],
    )


def _status() -> s.Schema:
    return s.obj(
        "Observed state, written by the operator.",
        {
            "observedGeneration": s.integer(
                "metadata.generation of the spec last reconciled.", minimum=0
            ),
            "conditions": common.conditions("Ready, Progressing, Degraded, DriftDetected."),
            "model": common.resolved_model("What is actually served: resolved, never an alias."),
            "history": s.array(
                "Audit trail of the versions served, oldest first.",
                s.obj(
                    "One version and when it served.",
                    {
                        "version": s.string("Model version served.", max_length=10),
                        "from": s.timestamp("When it started serving."),
                        "to": s.timestamp("When it stopped serving; absent while it serves."),
                        "reason": s.string("Why it started serving.", max_length=256),
                    },
                ),
                max_items=100,
            ),
            "endpoint": s.string("Stable in-cluster URL of the router.", max_length=512),
            "traffic": s.string(
                "Traffic split in force, e.g. `stable=80,challenger=20`.", max_length=512
            ),
            "drift": s.obj(
                "Result of the last drift run (written by the drift job).",
                {
                    "lastRun": s.timestamp("When the drift job last ran."),
                    "maxPsi": s.number("Largest PSI across features."),
                    "driftedFeatures": s.array(
                        "Features flagged as drifted.",
                        s.string("A feature name.", max_length=256),
                        max_items=1000,
                    ),
                },
            ),
        },
    )


def build_crd() -> dict[str, object]:
    return common.crd(
        kind=KIND,
        plural=PLURAL,
        short_names=["md", "mdep"],
        description="ModelDeployment serves one MLflow registered model behind a stable endpoint "
        "and watches it for drift.",
        spec=_spec(),
        status=_status(),
        root_rules=common.NAME_RULES,
        columns=[
            common.READY_COLUMN,
            common.column("Model", ".status.model.name", "Registered model served."),
            common.column("Version", ".status.model.version", "Model version served."),
            common.column("Traffic", ".status.traffic", "Traffic split in force."),
            common.AGE_COLUMN,
        ],
    )
