"""Rewards under scale-out, restarts and hostile clients: real routers, a real Redis, real model
servers, all over real sockets.

Three router processes share one Redis (the de-duplication store) and one signing key, as the
replicas of one router Deployment do; rewards are posted round-robin to another replica than the
one that answered, retried on a third, and posted after a router is killed and started again. The
hostile-client tests play the attacks of issue 15 against one router: a guessed or tampered request
id, a replayed `X-Request-Id`, a reward for a refused request, rewards outside the declared type.
"""

from __future__ import annotations

import math
import re
import secrets
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from modelpilot.testing import ports, processes
from tests.services import conftest as svc

pytestmark = pytest.mark.mlflow


# ---- a real Redis (Debian's redis-server, installed by hack/install-redis.sh) --------------------
@dataclass(frozen=True)
class Redis:
    url: str
    proc: subprocess.Popen[bytes]


def _redis_binary() -> str:
    found = shutil.which("valkey-server") or shutil.which("redis-server")
    if found is None:
        pytest.fail(
            "redis-server is not installed: run `make redis-binaries` (hack/install-redis.sh)"
        )
    return found


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redis]:
    import redis as redis_client

    port = ports.free_port()
    workdir = tmp_path_factory.mktemp("redis")
    log = workdir / "redis.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                _redis_binary(),
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(workdir),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    client = redis_client.Redis(host="127.0.0.1", port=port, socket_timeout=1)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server exited {proc.returncode}: {log.read_text()}")
            try:
                if client.ping():
                    break
            except redis_client.RedisError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.05)  # poll interval of a deadline loop
        yield Redis(url=f"redis://127.0.0.1:{port}/0", proc=proc)
    finally:
        client.close()
        processes.stop(proc, grace=10)


# ---- helpers ---------------------------------------------------------------------------------
def _body(model: svc.RegisteredModel) -> dict[str, object]:
    return {"instances": model.features.head(1).to_dict(orient="records")}


def _feedback(url: str, request_id: str, reward: object) -> httpx.Response:
    return httpx.post(url + "/feedback", json={"request_id": request_id, "reward": reward})


def _dir(tmp: Path, name: str) -> Path:
    (tmp / name).mkdir()
    return tmp / name


def _rewards(routers: list[svc.RouterProc]) -> dict[str, tuple[int, float]]:
    """(count, sum) of rewards per variant, summed over the replicas (as the operator does)."""
    out: dict[str, tuple[int, float]] = {}
    for router in routers:
        for name, v in httpx.get(router.admin + "/stats").json()["variants"].items():
            count, total = out.get(name, (0, 0.0))
            out[name] = (count + v["rewards"], total + v["reward_sum"])
    return out


@pytest.fixture(scope="module")
def shared_env(redis_server: Redis) -> dict[str, str]:
    """What the operator gives every replica of one router Deployment: the store and the key."""
    return {
        "MODELPILOT_ROUTER_FEEDBACK_STORE_URL": redis_server.url,
        "MODELPILOT_ROUTER_FEEDBACK_KEY": secrets.token_hex(32),
    }


# ---- 1. scale-out ----------------------------------------------------------------------------
def test_every_reward_posted_to_another_replica_and_retried_on_a_third_is_joined_exactly_once(
    two_servers: tuple[svc.Proc, svc.Proc],
    iris_model: svc.RegisteredModel,
    shared_env: dict[str, str],
    tmp_path: Path,
) -> None:
    a, b = two_servers
    doc = svc.routes_doc(a.url, b.url, weights=(50, 50))
    with (
        svc.router_process(doc, _dir(tmp_path, "r0"), seed=1, **shared_env) as r0,
        svc.router_process(doc, _dir(tmp_path, "r1"), seed=2, **shared_env) as r1,
        svc.router_process(doc, _dir(tmp_path, "r2"), seed=3, **shared_env) as r2,
    ):
        routers = [r0, r1, r2]
        before = _rewards(routers)
        answered: list[tuple[str, str, float]] = []
        with httpx.Client(timeout=30) as client:
            for i in range(120):
                r = client.post(routers[i % 3].url + "/predict", json=_body(iris_model))
                assert r.status_code == 200, r.text
                reward = float(i % 2)
                answered.append(
                    (r.headers["x-request-id"], r.headers["x-modelpilot-variant"], reward)
                )
            for i, (rid, variant, reward) in enumerate(answered):
                first = client.post(
                    routers[(i + 1) % 3].url + "/feedback",
                    json={"request_id": rid, "reward": reward},
                )
                assert first.status_code == 200, first.text
                assert first.json()["status"] == "joined"
                assert first.json()["variant"] == variant
                retry = client.post(
                    routers[(i + 2) % 3].url + "/feedback",
                    json={"request_id": rid, "reward": reward},
                )
                assert retry.status_code == 200, retry.text
                assert retry.json()["status"] == "duplicate"
        after = _rewards(routers)
        expected_count = Counter(variant for _, variant, _ in answered)
        expected_sum: Counter[str] = Counter()
        for _, variant, reward in answered:
            expected_sum[variant] += reward
        for variant in ("stable", "challenger"):
            count0, sum0 = before.get(variant, (0, 0.0))
            count1, sum1 = after[variant]
            assert count1 - count0 == expected_count[variant]
            assert sum1 - sum0 == pytest.approx(expected_sum[variant])


def test_a_reward_posted_after_a_router_is_killed_and_restarted_is_joined_once(
    two_servers: tuple[svc.Proc, svc.Proc],
    iris_model: svc.RegisteredModel,
    shared_env: dict[str, str],
    tmp_path: Path,
) -> None:
    a, b = two_servers
    doc = svc.routes_doc(a.url, b.url, weights=(0, 100))
    port = ports.free_port()
    with svc.router_process(doc, _dir(tmp_path, "r1"), seed=5, **shared_env) as other:
        with svc.router_process(doc, _dir(tmp_path, "r0"), seed=4, port=port, **shared_env) as r0:
            answers = [httpx.post(r0.url + "/predict", json=_body(iris_model)) for _ in range(3)]
            assert all(r.status_code == 200 for r in answers)
            rids = [r.headers["x-request-id"] for r in answers]
            # One reward joined before the crash: it must stay joined once after it.
            assert _feedback(r0.url, rids[0], 1).json()["status"] == "joined"
            r0.proc.kill()  # SIGKILL: nothing is flushed
            r0.proc.wait()
        with svc.router_process(
            doc, _dir(tmp_path, "r0b"), seed=6, port=port, **shared_env
        ) as again:
            joined = _feedback(again.url, rids[1], 1)
            assert joined.status_code == 200, joined.text
            assert joined.json() == {
                "status": "joined",
                "request_id": rids[1],
                "variant": "challenger",
            }
            on_other = _feedback(other.url, rids[2], 0)
            assert on_other.status_code == 200, on_other.text
            assert on_other.json()["status"] == "joined"
            for rid in rids:
                dup = _feedback(other.url, rid, 1)
                assert dup.status_code == 200, dup.text
                assert dup.json()["status"] == "duplicate"


# ---- 2. hostile clients (one router, no store: the in-process de-duplication) ----------------
@pytest.fixture
def one_router(two_servers: tuple[svc.Proc, svc.Proc], tmp_path: Path) -> Iterator[svc.RouterProc]:
    a, b = two_servers
    with svc.router_process(svc.routes_doc(a.url, b.url, weights=(50, 50)), tmp_path) as router:
        yield router


def _neighbour(request_id: str) -> str:
    """An attacker's guess at the id handed to the next client: the counter of the old
    `<prefix>-<hex counter>` ids plus one, or else the id with its last character changed."""
    m = re.fullmatch(r"(.*-)([0-9a-f]+)", request_id)
    if m:
        return f"{m.group(1)}{int(m.group(2), 16) + 1:x}"
    last = request_id[-1]
    return request_id[:-1] + ("A" if last != "A" else "B")


def test_a_guessed_or_tampered_request_id_cannot_take_the_victims_reward(
    one_router: svc.RouterProc, iris_model: svc.RegisteredModel
) -> None:
    url = one_router.url
    mine = httpx.post(url + "/predict", json=_body(iris_model)).headers["x-request-id"]
    victim = httpx.post(url + "/predict", json=_body(iris_model))
    stolen = _feedback(url, _neighbour(mine), 0)
    assert stolen.status_code == 404, stolen.text
    tampered = _feedback(url, _neighbour(victim.headers["x-request-id"]), 0)
    assert tampered.status_code == 404, tampered.text
    own = _feedback(url, victim.headers["x-request-id"], 1)
    assert own.status_code == 200
    assert own.json()["status"] == "joined"


def test_a_replayed_x_request_id_does_not_move_an_existing_request_to_another_variant(
    one_router: svc.RouterProc, iris_model: svc.RegisteredModel
) -> None:
    url = one_router.url
    victim = httpx.post(url + "/predict", json=_body(iris_model))
    rid, variant = victim.headers["x-request-id"], victim.headers["x-modelpilot-variant"]
    with httpx.Client() as client:
        for _ in range(40):  # at 50/50, the other variant answers one of these almost surely
            r = client.post(url + "/predict", json=_body(iris_model), headers={"X-Request-Id": rid})
            assert r.status_code == 200
            assert r.headers["x-request-id"] != rid
    own = _feedback(url, rid, 1)
    assert own.status_code == 200, own.text
    assert own.json()["variant"] == variant


def test_a_reward_for_a_request_the_model_server_refused_is_refused(
    one_router: svc.RouterProc,
) -> None:
    refused = httpx.post(one_router.url + "/predict", json={"instances": [[1.0]]})
    assert refused.status_code == 422
    answer = _feedback(one_router.url, refused.headers["x-request-id"], 1)
    assert answer.status_code == 409, answer.text
    assert "request_id" in answer.json()["error"]
    stats = httpx.get(one_router.admin + "/stats").json()["variants"]
    assert sum(v["rewards"] for v in stats.values()) == 0


@pytest.mark.parametrize("reward", [5, -3, 0.5, 1e6, "1", True])
def test_a_binary_experiment_refuses_every_reward_but_0_and_1_naming_the_field(
    two_servers: tuple[svc.Proc, svc.Proc],
    iris_model: svc.RegisteredModel,
    tmp_path: Path,
    reward: object,
) -> None:
    a, b = two_servers
    doc = svc.routes_doc(a.url, b.url)
    doc["policy"]["reward"] = {"type": "binary"}  # type: ignore[index]
    with svc.router_process(doc, tmp_path) as router:
        rid = httpx.post(router.url + "/predict", json=_body(iris_model)).headers["x-request-id"]
        answer = _feedback(router.url, rid, reward)
        assert answer.status_code == 422, answer.text
        assert "reward" in answer.json()["error"]
        for good in (1, 0):  # the refused one did not use the id up; the first good one joins
            rid = httpx.post(router.url + "/predict", json=_body(iris_model)).headers[
                "x-request-id"
            ]
            assert _feedback(router.url, rid, good).json()["status"] == "joined"
        stats = httpx.get(router.admin + "/stats").json()["variants"]
        assert sum(v["rewards"] for v in stats.values()) == 2
        assert sum(v["reward_sum"] for v in stats.values()) == 1


def test_a_continuous_reward_outside_the_declared_range_is_refused_and_the_sums_stay_finite(
    two_servers: tuple[svc.Proc, svc.Proc],
    iris_model: svc.RegisteredModel,
    tmp_path: Path,
) -> None:
    a, b = two_servers
    doc = svc.routes_doc(a.url, b.url)
    doc["policy"]["reward"] = {"type": "continuous", "minimum": -10, "maximum": 100}  # type: ignore[index]
    with svc.router_process(doc, tmp_path) as router:
        for reward in (1.7e308, 1.7e308, 1e200, -11, 100.5, "3"):
            rid = httpx.post(router.url + "/predict", json=_body(iris_model)).headers[
                "x-request-id"
            ]
            answer = _feedback(router.url, rid, reward)
            assert answer.status_code == 422, (reward, answer.text)
            assert "reward" in answer.json()["error"]
        rid = httpx.post(router.url + "/predict", json=_body(iris_model)).headers["x-request-id"]
        assert _feedback(router.url, rid, -10).json()["status"] == "joined"
        stats = httpx.get(router.admin + "/stats").json()["variants"]
        for v in stats.values():
            assert v["reward_sum"] is not None
            assert math.isfinite(v["reward_sum"])
            assert v["reward_sum_squares"] is not None
            assert math.isfinite(v["reward_sum_squares"])
        assert sum(v["reward_sum"] for v in stats.values()) == -10


def test_without_a_declared_reward_huge_rewards_are_refused_and_stats_never_hold_null(
    one_router: svc.RouterProc, iris_model: svc.RegisteredModel
) -> None:
    url = one_router.url
    for _ in range(6):
        rid = httpx.post(url + "/predict", json=_body(iris_model)).headers["x-request-id"]
        answer = _feedback(url, rid, 1.7e308)
        assert answer.status_code == 422, answer.text
        assert "reward" in answer.json()["error"]
    for v in httpx.get(one_router.admin + "/stats").json()["variants"].values():
        assert v["reward_sum"] is not None
        assert math.isfinite(v["reward_sum"])
        assert v["reward_sum_squares"] is not None
        assert math.isfinite(v["reward_sum_squares"])


def test_while_the_shared_store_is_down_a_reward_is_refused_with_503_and_counts_after_a_retry(
    two_servers: tuple[svc.Proc, svc.Proc],
    iris_model: svc.RegisteredModel,
    redis_server: Redis,
    tmp_path: Path,
) -> None:
    a, b = two_servers
    doc = svc.routes_doc(a.url, b.url)
    key = secrets.token_hex(32)
    down = f"redis://127.0.0.1:{ports.free_port()}/0"  # nothing listens there
    with svc.router_process(
        doc,
        _dir(tmp_path, "down"),
        MODELPILOT_ROUTER_FEEDBACK_STORE_URL=down,
        MODELPILOT_ROUTER_FEEDBACK_KEY=key,
    ) as router:
        answered = httpx.post(router.url + "/predict", json=_body(iris_model))
        assert answered.status_code == 200  # serving needs no store
        refused = _feedback(router.url, answered.headers["x-request-id"], 1)
        assert refused.status_code == 503, refused.text
        assert "retry" in refused.json()["error"]
        stats = httpx.get(router.admin + "/stats").json()["variants"]
        assert sum(v["rewards"] for v in stats.values()) == 0
    # The client's retry reaches a replica whose store answers: counted, once.
    with svc.router_process(
        doc,
        _dir(tmp_path, "up"),
        MODELPILOT_ROUTER_FEEDBACK_STORE_URL=redis_server.url,
        MODELPILOT_ROUTER_FEEDBACK_KEY=key,
    ) as router:
        rid = answered.headers["x-request-id"]
        assert _feedback(router.url, rid, 1).json()["status"] == "joined"
        assert _feedback(router.url, rid, 1).json()["status"] == "duplicate"
