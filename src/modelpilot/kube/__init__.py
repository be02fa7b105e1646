"""The one layer that talks to the Kubernetes API outside kopf's own machinery.

`client` builds the authenticated API client (kubeconfig or in-cluster); `apply` does server-side
apply with the operator's single field manager, reads, lists, prunes and patches status. The
operator's handlers and the Experiment controller both go through `apply`.
"""
