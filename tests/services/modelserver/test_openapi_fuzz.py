"""Schemathesis over the model server's and the router's OpenAPI: no generated request gets a 5xx.

Both apps run as real processes on loopback (the router in front of two real model servers);
schemathesis reads each app's `/openapi.json` and Hypothesis generates bodies, paths and queries
for every operation, valid and not.
"""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis

from tests.services import conftest as svc

pytestmark = pytest.mark.mlflow

EXAMPLES = 60


def _fuzz_operation(base_url: str, operation: schemathesis.APIOperation) -> list[int]:
    seen: list[int] = []

    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy())
    def no_server_error(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, timeout=30)
        seen.append(response.status_code)
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
        )

    no_server_error()
    return seen


def _fuzz(base_url: str) -> int:
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json")
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        assert _fuzz_operation(base_url, operation), operation.label
        checked += 1
    return checked


def test_no_request_generated_from_the_model_servers_openapi_gets_a_5xx(
    served_iris: svc.Proc,
) -> None:
    assert _fuzz(served_iris.url) >= 7
    assert _fuzz(served_iris.admin) >= 1  # /drift/window, on the admin port (issue 15)


def test_no_request_generated_from_the_routers_openapi_gets_a_5xx(
    two_servers: tuple[svc.Proc, svc.Proc], tmp_path: object
) -> None:
    from pathlib import Path

    a, b = two_servers
    with svc.router_process(svc.routes_doc(a.url, b.url), Path(str(tmp_path))) as router:
        assert _fuzz(router.url) >= 4  # inference, /feedback, health
        assert _fuzz(router.admin) >= 2  # /stats, /routes: the admin port (issue 15)
