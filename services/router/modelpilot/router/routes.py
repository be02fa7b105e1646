"""The router's view of the routes document: the typed contract of `modelpilot.api.routes`.

The document (the `<deployment>-routes` ConfigMap, key `routes.json`) is one model, defined once in
`modelpilot.api.routes` and written by the operator's `builders.routes`; this module names it for
the router's code. Design decision: the document is validated whole (`load_routes`) into an
immutable `Routes` before it replaces the one in force; a bad edit of the ConfigMap raises
`InvalidRoutes` (an `InputError` naming the field), which the sources log and skip, so the router
keeps serving the last good routes instead of breaking traffic.
"""

from __future__ import annotations

from modelpilot.api import constants
from modelpilot.api import routes as contract

POLICIES = constants.POLICY_TYPES

Beta = contract.Beta
Gaussian = contract.Gaussian
Variant = contract.Variant
Policy = contract.Policy
Reward = contract.Reward
Routes = contract.Routes
InvalidRoutes = contract.InvalidRoutes

parse_routes = contract.parse
"""Validate a decoded routes document; `InvalidRoutes` names the first bad field."""

load_routes = contract.loads
"""Parse the ConfigMap's JSON text; `InvalidRoutes` on bad JSON or a bad document."""
