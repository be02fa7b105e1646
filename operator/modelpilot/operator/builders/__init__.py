"""Pure builders of the Kubernetes objects a ModelDeployment (or an Experiment) turns into.

Every `build_*` returns a complete plain dict (dask-kubernetes style) including labels and owner
references, ready for server-side apply; nothing here imports kopf, kubernetes or mlflow. Modules:
`meta` (names, labels, owner references), `workloads` (model-server and router Deployments and
Services), `routes` (the routes ConfigMap, single writer), `drift` (CronJob and its RBAC),
`desired` (the full set for one ModelDeployment).
"""
