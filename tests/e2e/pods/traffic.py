"""Run inside the cluster by the e2e tier (a Job of the modelpilot image): traffic through the
router's Service, by its cluster DNS name, with delayed rewards.

Modes (one JSON summary line on stdout at the end; progress lines start with "progress"):
  bandit URL SECONDS   predictions for up to SECONDS; each answer's variant earns reward 1 with
                       probability P[variant] (challenger 0.9, any other 0.3), sent to /feedback
                       2 s later (delayed, joined by X-Request-Id)
  rollout URL VERSION SECONDS
                       steady predictions until 30 answers in a row come from model VERSION
                       (or SECONDS pass); counts every failed request (non-200 or no answer)
"""

import collections
import json
import random
import sys
import time

import httpx

ROWS = [
    {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2},
    {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3},
]
REWARD_P = {"challenger": 0.9}
DEFAULT_P = 0.3
FEEDBACK_DELAY = 2.0


def bandit(client: httpx.Client, url: str, seconds: float) -> dict[str, object]:
    rng = random.Random(0)
    pending: collections.deque[tuple[float, str, int]] = collections.deque()
    counts: collections.Counter[str] = collections.Counter()
    rewards: collections.Counter[str] = collections.Counter()
    failed = 0
    deadline = time.monotonic() + seconds
    last_progress = 0.0
    while time.monotonic() < deadline:
        try:
            answer = client.post(f"{url}/predict", json={"instances": ROWS})
        except httpx.HTTPError:
            failed += 1
            continue
        if answer.status_code != 200:
            failed += 1
            continue
        variant = answer.headers["X-Modelpilot-Variant"]
        counts[variant] += 1
        reward = int(rng.random() < REWARD_P.get(variant, DEFAULT_P))
        rewards[variant] += reward
        pending.append((time.monotonic() + FEEDBACK_DELAY, answer.headers["X-Request-Id"], reward))
        while pending and pending[0][0] <= time.monotonic():
            _, request_id, value = pending.popleft()
            client.post(f"{url}/feedback", json={"request_id": request_id, "reward": value})
        if time.monotonic() - last_progress > 5:
            last_progress = time.monotonic()
            print("progress", json.dumps(dict(counts)), flush=True)
        time.sleep(0.02)  # a steady ~40 requests/s, not a synchronisation
    return {"requests": dict(counts), "rewards": dict(rewards), "failed": failed}


def rollout(client: httpx.Client, url: str, version: str, seconds: float) -> dict[str, object]:
    versions: collections.Counter[str] = collections.Counter()
    failures: list[str] = []
    streak = 0
    sent = 0
    deadline = time.monotonic() + seconds
    last_progress = 0.0
    while time.monotonic() < deadline and streak < 30:
        sent += 1
        try:
            answer = client.post(f"{url}/predict", json={"instances": ROWS})
        except httpx.HTTPError as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
            streak = 0
            continue
        if answer.status_code != 200:
            failures.append(f"{answer.status_code}: {answer.text[:200]}")
            streak = 0
            continue
        served = str(answer.json().get("model_version"))
        versions[served] += 1
        streak = streak + 1 if served == version else 0
        if time.monotonic() - last_progress > 5:
            last_progress = time.monotonic()
            print("progress", json.dumps(dict(versions)), flush=True)
        time.sleep(0.05)  # a steady ~20 requests/s, not a synchronisation
    return {
        "sent": sent,
        "failed": len(failures),
        "failures": failures[:20],
        "versions": dict(versions),
        "reached": streak >= 30,
    }


def main() -> None:
    mode, url = sys.argv[1], sys.argv[2].rstrip("/")
    with httpx.Client(timeout=10.0) as client:
        if mode == "bandit":
            summary = bandit(client, url, float(sys.argv[3]))
        elif mode == "rollout":
            summary = rollout(client, url, sys.argv[3], float(sys.argv[4]))
        else:
            raise SystemExit(f"unknown mode {mode!r} (bandit, rollout)")
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
