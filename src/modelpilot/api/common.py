"""Schema pieces shared by ModelDeployment and Experiment: model references, conditions, resources.

Design decision: "exactly one of alias / version" is a CEL rule on the model reference itself, so
the API server's error names `spec.model` (or `spec.variants[i].model`) wherever it is used.
"""

from __future__ import annotations

from modelpilot.api import schema as s

GROUP = "modelpilot.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "modelpilot"

MODEL_VERSION_PATTERN = "^[1-9][0-9]*$"
ALIAS_PATTERN = "^[A-Za-z_][A-Za-z0-9_-]*$"  # MLflow aliases: no leading digit, no '/'.


def model_reference(description: str) -> s.Schema:
    return s.obj(
        description,
        {
            "name": s.string(
                "Registered model name in the MLflow model registry.",
                min_length=1,
                max_length=256,
            ),
            "alias": s.string(
                "Registry alias to follow (e.g. `champion`); the operator re-resolves it on every "
                "resync and rolls out when it moves. Exactly one of alias and version.",
                pattern=ALIAS_PATTERN,
                max_length=255,
            ),
            "version": s.string(
                "A fixed registered model version (a positive integer, as a string). Exactly one "
                "of alias and version.",
                pattern=MODEL_VERSION_PATTERN,
                max_length=10,
            ),
        },
        required=["name"],
        rules=[
            s.rule(
                "has(self.alias) != has(self.version)",
                "exactly one of alias or version must be set",
            )
        ],
    )


def resolved_model(description: str) -> s.Schema:
    return s.obj(
        description,
        {
            "name": s.string("Registered model name.", max_length=256),
            "version": s.string("Registered model version actually served.", max_length=10),
            "runId": s.string("MLflow run that produced the version.", max_length=64),
            "source": s.string("Artifact location of the version.", max_length=2048),
            "alias": s.string("The alias this version was resolved from, if any.", max_length=255),
        },
    )


def resources(description: str) -> s.Schema:
    """A core/v1 ResourceRequirements (limits and requests only)."""
    return s.obj(
        description,
        {
            "limits": s.string_map(
                "Maximum compute resources (e.g. `cpu: 500m`, `memory: 512Mi`).",
                s.quantity("A resource quantity."),
                max_properties=16,
            ),
            "requests": s.string_map(
                "Minimum compute resources the scheduler reserves.",
                s.quantity("A resource quantity."),
                max_properties=16,
            ),
        },
    )


def conditions(description: str) -> s.Schema:
    """metav1.Condition list, keyed by type (the cert-manager / KEP-1623 convention)."""
    return s.array(
        description,
        s.obj(
            "One observed condition.",
            {
                "type": s.string("Condition type, e.g. Ready.", max_length=316),
                "status": s.string(
                    "True, False or Unknown.", enum=["True", "False", "Unknown"], max_length=7
                ),
                "reason": s.string("CamelCase reason for the last transition.", max_length=1024),
                "message": s.string("Human-readable detail.", max_length=32768),
                "lastTransitionTime": s.string(
                    "When the status last flipped.", fmt="date-time", max_length=64
                ),
                "observedGeneration": s.integer(
                    "metadata.generation the condition was computed from.", minimum=0
                ),
            },
            required=["type", "status"],
        ),
        max_items=16,
        list_type="map",
        map_keys=["type"],
    )


def crd(
    *,
    kind: str,
    plural: str,
    short_names: list[str],
    spec: s.Schema,
    status: s.Schema,
    columns: list[dict[str, object]],
    root_rules: list[dict[str, str]] | None = None,
    description: str,
) -> dict[str, object]:
    """A namespaced CustomResourceDefinition with one served, stored version and a status."""
    root = s.obj(
        description,
        {
            "apiVersion": s.string("Versioned schema of this object.", max_length=None),
            "kind": s.string("REST resource this object represents.", max_length=None),
            # The API server allows nothing on metadata beyond name rules; declaring `name` lets
            # the root CEL rules point their errors at it (fieldPath .metadata.name).
            "metadata": {"type": "object", "properties": {"name": {"type": "string"}}},
            "spec": spec,
            "status": status,
        },
        required=["spec"],
        rules=root_rules,
    )
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "modelpilot"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short_names,
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def column(
    name: str, json_path: str, description: str, *, kind: str = "string"
) -> dict[str, object]:
    return {"name": name, "type": kind, "jsonPath": json_path, "description": description}


READY_COLUMN = column(
    "Ready", '.status.conditions[?(@.type=="Ready")].status', "Whether the resource is Ready."
)
AGE_COLUMN = column("Age", ".metadata.creationTimestamp", "Time since creation.", kind="date")

NAME_RULES = [
    s.rule(
        "self.metadata.name.size() <= 40",
        "metadata.name must be at most 40 characters: it prefixes the names of the objects "
        "the resource owns",
        field_path=".metadata.name",
    ),
    s.rule(
        "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
        "metadata.name must be a DNS-1035 label (lower-case letters, digits and '-', starting "
        "with a letter): it names Services",
        field_path=".metadata.name",
    ),
]
