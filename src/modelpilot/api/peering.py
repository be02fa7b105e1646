"""kopf's peering CRDs (`kopf.dev/v1`), needed when the operator runs more than one replica.

Design decision: kopf keeps its leader/peer bookkeeping in these two resources (cluster-wide and
namespaced); they are rendered beside our CRDs so a multi-replica install needs no manifest from
elsewhere. Their schema is kopf's own (status is free-form), reproduced here as data.
"""

from __future__ import annotations

PEERING_GROUP = "kopf.dev"


def _peering_crd(*, kind: str, plural: str, scope: str) -> dict[str, object]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{PEERING_GROUP}",
            "labels": {"app.kubernetes.io/part-of": "modelpilot"},
        },
        "spec": {
            "group": PEERING_GROUP,
            "scope": scope,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "kopf operator peers (one key per running replica).",
                            "properties": {
                                "status": {
                                    "type": "object",
                                    "description": "Peers and their priorities, kept by kopf.",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


def build_crds() -> list[dict[str, object]]:
    return [
        _peering_crd(kind="ClusterKopfPeering", plural="clusterkopfpeerings", scope="Cluster"),
        _peering_crd(kind="KopfPeering", plural="kopfpeerings", scope="Namespaced"),
    ]
