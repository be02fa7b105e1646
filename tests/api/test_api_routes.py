"""The routes document is one contract: what the operator writes is what the router reads."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelpilot import errors
from modelpilot.api import constants
from modelpilot.api import routes as contract
from modelpilot.operator.builders import routes as builder
from modelpilot.router import routes as router_routes

MD = {
    "apiVersion": constants.API_VERSION,
    "kind": constants.MODEL_DEPLOYMENT_KIND,
    "metadata": {"name": "iris", "namespace": "ml", "uid": "uid-1"},
    "spec": {},
}


def _experiment(posteriors: list[dict[str, float]], policy: str = "thompson") -> dict[str, Any]:
    return {
        "spec": {"policy": {"type": policy, "epsilon": 0.2, "stickyHeader": "x-user"}},
        "status": {
            "phase": constants.RUNNING,
            "variants": [
                {"name": name, "model": {"version": v}, "weight": w, "posterior": p}
                for (name, v, w), p in zip(
                    [(constants.STABLE, "3", 70), ("challenger", "4", 30)], posteriors, strict=True
                )
            ],
        },
    }


def _written(experiment: dict[str, Any] | None) -> str:
    variants, policy = builder.route_variants(stable_version="3", experiment=experiment)
    cm = builder.build_routes_configmap(MD, variants=variants, policy=policy)
    text: str = cm["data"][constants.ROUTES_KEY]
    return text


def test_the_router_reads_exactly_the_document_the_operator_writes() -> None:
    text = _written(_experiment([{"alpha": 10.0, "beta": 5.0}, {"alpha": 3.0, "beta": 2.5}]))
    parsed = router_routes.load_routes(text)
    assert (parsed.deployment, parsed.stable) == ("iris", constants.STABLE)
    assert (parsed.policy.type, parsed.policy.epsilon, parsed.policy.sticky_header) == (
        "thompson",
        0.2,
        "x-user",
    )
    assert parsed.variants == (
        contract.Variant(
            name="stable",
            url="http://iris-stable.ml.svc:80",
            weight=70.0,
            model_version="3",
            posterior=contract.Beta(10.0, 5.0),
        ),
        contract.Variant(
            name="challenger",
            url="http://iris-challenger.ml.svc:80",
            weight=30.0,
            model_version="4",
            posterior=contract.Beta(3.0, 2.5),
        ),
    )
    # And the round trip is the identity on the text, byte for byte.
    assert contract.dumps(parsed) == text


def test_the_operator_refuses_to_write_routes_the_router_would_reject() -> None:
    # Under thompson every posterior must be of one family; before the shared contract the
    # builder wrote this document and every router refused it (and kept stale routes).
    mixed = _experiment([{"alpha": 1.0, "beta": 1.0}, {"mean": 0.5, "variance": 0.1}])
    with pytest.raises(contract.InvalidRoutes, match=r"routes\.variants\[\*\]\.posterior"):
        _written(mixed)
    with pytest.raises(router_routes.InvalidRoutes):
        router_routes.parse_routes(
            {**json.loads(_written(None)), "variants": [{"name": "stable", "url": "ftp://x"}]}
        )


def test_an_invalid_document_raises_the_one_documented_exception_naming_the_field() -> None:
    for text, field in [
        ("not json", "routes.json"),
        ('{"deployment": "iris", "variants": []}', "routes.variants"),
        ('{"deployment": "iris", "policy": {"type": "ucb"}, "variants": []}', "routes.policy.type"),
    ]:
        with pytest.raises(contract.InvalidRoutes) as info:
            contract.loads(text)
        assert str(info.value).startswith(field)
        assert isinstance(info.value, errors.InputError)


def test_expected_shares_are_the_normalised_weights_and_even_when_all_are_zero() -> None:
    routes = contract.loads(
        _written(_experiment([{"alpha": 1, "beta": 1}, {"alpha": 1, "beta": 1}]))
    )
    assert contract.expected_shares(routes) == {"stable": 0.7, "challenger": 0.3}
    zero = contract.Routes(
        deployment="iris",
        stable="stable",
        policy=contract.Policy(),
        variants=tuple(
            contract.Variant(name=n, url=f"http://{n}", weight=0.0, model_version=None)
            for n in ("stable", "b")
        ),
    )
    assert contract.expected_shares(zero) == {"stable": 0.5, "b": 0.5}
