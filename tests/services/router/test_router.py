"""The router over real sockets, in front of two real model-server processes."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import scipy.stats

from modelpilot.stats import bandits
from modelpilot.testing import ports
from tests.services import conftest as svc

pytestmark = pytest.mark.mlflow


@pytest.fixture(scope="module")
def router(
    two_servers: tuple[svc.Proc, svc.Proc], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[svc.RouterProc]:
    a, b = two_servers
    with svc.router_process(
        svc.routes_doc(a.url, b.url), tmp_path_factory.mktemp("router"), seed=11
    ) as proc:
        yield proc


def _body(model: svc.RegisteredModel) -> dict[str, object]:
    return {"instances": model.features.head(1).to_dict(orient="records")}


async def _send_many(
    url: str,
    body: dict[str, object],
    n: int,
    *,
    concurrency: int = 16,
    headers: dict[str, str] | None = None,
) -> list[httpx.Response]:
    out: list[httpx.Response] = []
    async with httpx.AsyncClient(timeout=30) as client:
        queue = iter(range(n))

        async def worker() -> None:
            for _ in queue:
                out.append(await client.post(url + "/predict", json=body, headers=headers))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


def test_fixed_80_20_over_5000_requests_lands_inside_the_99_percent_binomial_intervals(
    router: svc.RouterProc,
    two_servers: tuple[svc.Proc, svc.Proc],
    iris_model: svc.RegisteredModel,
) -> None:
    a, b = two_servers
    router.set_routes(svc.routes_doc(a.url, b.url, weights=(80, 20)))
    before = httpx.get(router.admin + "/stats").json()["variants"]
    responses = asyncio.run(_send_many(router.url, _body(iris_model), 5_000))
    assert all(r.status_code == 200 for r in responses)
    assert len({r.headers["x-request-id"] for r in responses}) == 5_000
    shares = Counter(r.headers["x-modelpilot-variant"] for r in responses)
    for name, p in (("stable", 0.8), ("challenger", 0.2)):
        low, high = scipy.stats.binom.interval(0.99, 5_000, p)
        assert low <= shares[name] <= high, (name, shares)
    after = httpx.get(router.admin + "/stats").json()["variants"]
    for name in ("stable", "challenger"):
        assert (
            after[name]["requests"] - before.get(name, {"requests": 0})["requests"] == shares[name]
        )


def test_a_thompson_posterior_favouring_the_challenger_gives_it_its_probability_to_be_best(
    router: svc.RouterProc,
    two_servers: tuple[svc.Proc, svc.Proc],
    iris_model: svc.RegisteredModel,
) -> None:
    a, b = two_servers
    posteriors = ({"alpha": 40.0, "beta": 60.0}, {"alpha": 46.0, "beta": 54.0})
    p_best = bandits.probability_to_be_best(
        [40.0, 46.0], [60.0, 54.0], draws=400_000, rng=__import__("numpy").random.default_rng(9)
    )
    assert 0.7 < p_best[1] < 0.95
    # As the operator writes it: the weights are P(best), bounded by the policy (here 5..95).
    weights = bandits.bounded_weights(p_best, floor=5, ceiling=95)
    router.set_routes(
        svc.routes_doc(
            a.url,
            b.url,
            policy="thompson",
            posteriors=posteriors,
            weights=(weights[0], weights[1]),
        )
    )
    n = 3_000
    responses = asyncio.run(_send_many(router.url, _body(iris_model), n))
    to_challenger = sum(r.headers["x-modelpilot-variant"] == "challenger" for r in responses)
    low, _ = scipy.stats.binom.interval(0.99, n, p_best[1] - 0.005)
    _, high = scipy.stats.binom.interval(0.99, n, p_best[1] + 0.005)
    assert low <= to_challenger <= high


def test_feedback_is_joined_to_the_variant_that_answered_and_duplicates_are_ignored(
    router: svc.RouterProc,
    two_servers: tuple[svc.Proc, svc.Proc],
    iris_model: svc.RegisteredModel,
) -> None:
    a, b = two_servers
    router.set_routes(svc.routes_doc(a.url, b.url, weights=(0, 100)))
    r = httpx.post(router.url + "/predict", json=_body(iris_model))
    assert r.headers["x-modelpilot-variant"] == "challenger"
    rid = r.headers["x-request-id"]
    before = httpx.get(router.admin + "/stats").json()["variants"]["challenger"]
    first = httpx.post(router.url + "/feedback", json={"request_id": rid, "reward": 1.0})
    assert first.status_code == 200
    assert first.json() == {"status": "joined", "request_id": rid, "variant": "challenger"}
    dup = httpx.post(router.url + "/feedback", json={"request_id": rid, "reward": 1.0})
    assert dup.status_code == 200
    assert dup.json()["status"] == "duplicate"
    after = httpx.get(router.admin + "/stats").json()["variants"]["challenger"]
    assert after["rewards"] == before["rewards"] + 1
    assert after["reward_sum"] == before["reward_sum"] + 1.0
    unknown = httpx.post(router.url + "/feedback", json={"request_id": "nope", "reward": 1})
    assert unknown.status_code == 404
    assert "nope" in unknown.json()["error"]
    bad = httpx.post(router.url + "/feedback", json={"request_id": rid, "reward": "x"})
    assert bad.status_code == 422
    assert "reward" in bad.json()["error"]


def _metric(text: str, name: str, variant: str) -> float:
    line = next(
        x for x in text.splitlines() if x.startswith(name + "{") and f'variant="{variant}"' in x
    )
    return float(line.rsplit(" ", 1)[1])


def test_continuous_rewards_negative_ones_too_reach_stats_and_metrics_with_their_squares(
    router: svc.RouterProc,
    two_servers: tuple[svc.Proc, svc.Proc],
    iris_model: svc.RegisteredModel,
) -> None:
    a, b = two_servers
    router.set_routes(svc.routes_doc(a.url, b.url, weights=(0, 100)))
    rewards = [12.5, -3.0, 0.25]
    rids = []
    for _ in rewards:
        r = httpx.post(router.url + "/predict", json=_body(iris_model))
        assert r.headers["x-modelpilot-variant"] == "challenger"
        rids.append(r.headers["x-request-id"])
    names = (
        "modelpilot_router_rewards_total",
        "modelpilot_router_reward_sum_total",
        "modelpilot_router_negative_reward_sum_total",
        "modelpilot_router_reward_sum_squares_total",
    )
    before = httpx.get(router.admin + "/stats").json()["variants"]["challenger"]
    text = httpx.get(router.admin + "/metrics").text
    m_before = {n: _metric(text, n, "challenger") for n in names}
    for rid, reward in zip(rids, rewards, strict=True):
        answer = httpx.post(router.url + "/feedback", json={"request_id": rid, "reward": reward})
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "joined"
    after = httpx.get(router.admin + "/stats").json()["variants"]["challenger"]
    assert after["rewards"] - before["rewards"] == 3
    assert after["reward_sum"] - before["reward_sum"] == pytest.approx(9.75)
    assert after["reward_sum_squares"] - before["reward_sum_squares"] == pytest.approx(
        12.5**2 + 3.0**2 + 0.25**2
    )
    text = httpx.get(router.admin + "/metrics").text
    delta = {n: _metric(text, n, "challenger") - m_before[n] for n in names}
    assert delta == pytest.approx(
        dict(zip(names, (3.0, 12.75, 3.0, 12.5**2 + 3.0**2 + 0.25**2), strict=True))
    )


def test_with_the_challenger_down_every_request_succeeds_through_stable_and_its_errors_rise(
    router: svc.RouterProc,
    two_servers: tuple[svc.Proc, svc.Proc],
    iris_model: svc.RegisteredModel,
) -> None:
    a, _ = two_servers
    dead = f"http://127.0.0.1:{ports.free_port()}"  # nothing listens there
    router.set_routes(svc.routes_doc(a.url, dead, weights=(50, 50)))
    before = httpx.get(router.admin + "/stats").json()["variants"]["challenger"]
    responses = asyncio.run(_send_many(router.url, _body(iris_model), 400))
    assert all(r.status_code == 200 for r in responses)
    assert {r.headers["x-modelpilot-variant"] for r in responses} == {"stable"}
    after = httpx.get(router.admin + "/stats").json()["variants"]["challenger"]
    failed = after["errors"] - before["errors"]
    low, high = scipy.stats.binom.interval(0.99, 400, 0.5)
    assert low <= failed <= high
    assert after["fallbacks"] - before["fallbacks"] == failed
    metrics = httpx.get(router.admin + "/metrics").text
    line = next(
        x
        for x in metrics.splitlines()
        if x.startswith("modelpilot_router_errors_total") and 'variant="challenger"' in x
    )
    assert float(line.rsplit(" ", 1)[1]) >= failed


def test_a_routes_change_applies_within_a_second_without_a_restart(
    router: svc.RouterProc,
    two_servers: tuple[svc.Proc, svc.Proc],
    iris_model: svc.RegisteredModel,
) -> None:
    a, b = two_servers
    router.set_routes(svc.routes_doc(a.url, b.url, weights=(100, 0)))
    pid = router.proc.pid
    elapsed = router.set_routes(svc.routes_doc(a.url, b.url, weights=(0, 100)))
    assert elapsed < 1.0
    responses = asyncio.run(_send_many(router.url, _body(iris_model), 100))
    assert {r.headers["x-modelpilot-variant"] for r in responses} == {"challenger"}
    assert router.proc.pid == pid
    assert router.proc.poll() is None


def test_a_sticky_user_key_always_gets_the_same_variant(
    router: svc.RouterProc,
    two_servers: tuple[svc.Proc, svc.Proc],
    iris_model: svc.RegisteredModel,
) -> None:
    a, b = two_servers
    router.set_routes(svc.routes_doc(a.url, b.url, policy="thompson", sticky="X-User"))
    seen: dict[str, set[str]] = {}
    with httpx.Client() as client:
        for i in range(40):
            for _ in range(3):
                r = client.post(
                    router.url + "/predict", json=_body(iris_model), headers={"X-User": f"user-{i}"}
                )
                seen.setdefault(f"user-{i}", set()).add(r.headers["x-modelpilot-variant"])
    assert all(len(v) == 1 for v in seen.values())
    assert {next(iter(v)) for v in seen.values()} == {"stable", "challenger"}


def test_the_router_passes_a_4xx_of_the_model_server_through_with_its_message(
    router: svc.RouterProc, two_servers: tuple[svc.Proc, svc.Proc]
) -> None:
    a, b = two_servers
    router.set_routes(svc.routes_doc(a.url, b.url))
    r = httpx.post(router.url + "/predict", json={"instances": [[1.0]]})
    assert r.status_code == 422
    assert "expected 4 values" in r.json()["error"]
    assert r.headers["x-modelpilot-variant"] in {"stable", "challenger"}
