"""The modelpilot custom resources (group `modelpilot.io`, version `v1alpha1`) as plain data.

The CRDs are built in Python (`modelpilot.api.crds`) and rendered to `manifests/crds/` by
`python -m modelpilot.api render --out manifests/crds`; a test checks that the committed YAML equals
the rendering, so the schema has one source of truth. The operator's RBAC rules live beside them
(`modelpilot.api.rbac`) for the same reason. Pure: no Kubernetes client, no kopf.
"""
