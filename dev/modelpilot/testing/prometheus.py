"""A real Prometheus and a real Pushgateway on loopback ports, for the test fixtures.

The binaries are Debian's (`prometheus` 2.x with promtool, `prometheus-pushgateway` 1.x),
installed by `hack/install-prometheus.sh` (`make prometheus-binaries`), which `ensure_binary` runs
on first use when one is missing. Neither is a mock: Prometheus scrapes the given targets every
second into a TSDB in the state directory, evaluates the given rule files, and answers PromQL over
its HTTP API; the Pushgateway keeps pushed groups in memory (`--persistence.file=`, not Debian's
`/var/lib` default). Each runs in its own session on a free port, is killed on exit, and keeps its
log in the state directory for failure messages.

Key design decision: a test never sleeps for "a scrape or two". `Prometheus.wait_scrapes` reads the
number of successful scrapes of a target from Prometheus itself (`sum_over_time(up[...])`), and
`Prometheus.wait_fresh` waits for two more than there are now: the first may have started before
the call (its sample is stamped at the scrape's start and written at its end), the second cannot.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modelpilot.testing import ports, processes

REPO_ROOT = Path(__file__).resolve().parents[3]
INSTALL_SCRIPT = REPO_ROOT / "hack" / "install-prometheus.sh"
SCRAPE_INTERVAL = "1s"
PUSHGATEWAY_BINARY = "prometheus-pushgateway"


class PrometheusHarnessError(RuntimeError):
    """A binary is missing or a server did not start or answer; the message says why."""


# ---- binaries -----------------------------------------------------------------------------------


@functools.cache
def ensure_binary(name: str) -> str:
    """The path of `prometheus`, `promtool` or `prometheus-pushgateway`, installing when missing.

    The install script needs root (apt-get); otherwise it fails with the command to run.
    """
    found = shutil.which(name)
    if found is None:
        if not INSTALL_SCRIPT.is_file():
            raise PrometheusHarnessError(f"{name} is not installed and {INSTALL_SCRIPT} is missing")
        proc = subprocess.run(
            ["bash", str(INSTALL_SCRIPT), "--quiet"],
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
        )
        found = shutil.which(name)
        if proc.returncode != 0 or found is None:
            raise PrometheusHarnessError(
                f"{name} is missing and {INSTALL_SCRIPT.name} could not install it "
                f"(exit {proc.returncode}):\n{proc.stderr[-2000:]}"
            )
    return found


# ---- HTTP and processes ---------------------------------------------------------------------


def _get(url: str, *, timeout: float = 5.0) -> Any:
    """GET a JSON document; HTTP errors with a JSON body (Prometheus' API errors) are returned."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return json.loads(body)
        except json.JSONDecodeError:
            raise PrometheusHarnessError(f"GET {url}: HTTP {exc.code}: {body[:300]!r}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise PrometheusHarnessError(f"GET {url}: {exc}") from exc


def _start(argv: Sequence[str], *, log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        # A session of its own, so teardown can signal the whole group.
        return subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=cwd,
        )


def _wait_ready(
    url: str, proc: subprocess.Popen[bytes], log_path: Path, *, what: str, timeout: float
) -> None:
    processes.wait_http_ok(
        f"{url}/-/ready", proc, log_path, what=what, timeout=timeout, error=PrometheusHarnessError
    )


# ---- Prometheus ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScrapeJob:
    """One scrape job: static targets, each with its own `instance` label."""

    name: str
    targets: Mapping[str, str]
    """`instance` label -> `host:port` to scrape."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Target labels added to every series of the job (e.g. `namespace`, as Kubernetes SD would)."""
    honor_labels: bool = False
    """Keep the scraped series' own `job`/`instance`/... labels (a Pushgateway's, as its
    ServiceMonitor does with `honorLabels: true`)."""
    metrics_path: str = "/metrics"


def build_config(
    jobs: Sequence[ScrapeJob], *, rule_files: Sequence[Path] = (), interval: str = SCRAPE_INTERVAL
) -> dict[str, Any]:
    """The prometheus.yml document: every job scraped and every rule group evaluated each
    `interval`."""
    return {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "evaluation_interval": interval,
        },
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [
            {
                "job_name": job.name,
                "honor_labels": job.honor_labels,
                "metrics_path": job.metrics_path,
                "static_configs": [
                    {"targets": [address], "labels": {**job.labels, "instance": instance}}
                    for instance, address in job.targets.items()
                ],
            }
            for job in jobs
        ],
    }


@dataclass(frozen=True)
class Prometheus:
    url: str
    state_dir: Path
    log_path: Path
    pid: int

    def log_tail(self, lines: int = 40) -> str:
        return processes.log_tail(self.log_path, lines)

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; the `data` of a successful answer, else PrometheusHarnessError."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        doc = _get(f"{self.url}/api/v1/{path}{query}")
        if not isinstance(doc, dict) or doc.get("status") != "success":
            raise PrometheusHarnessError(f"/api/v1/{path} {params}: {doc!r:.500}")
        return doc["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result vector (`[{"metric": {...}, "value": [t, "v"]}, ...]`)."""
        data = self.api("query", query=promql)
        if data.get("resultType") != "vector":
            raise PrometheusHarnessError(f"{promql}: expected a vector, got {data!r:.300}")
        result: list[dict[str, Any]] = data["result"]
        return result

    def scalar(self, promql: str) -> float | None:
        """The value of a query that selects at most one series (None when it selects none)."""
        result = self.query(promql)
        if len(result) > 1:
            raise PrometheusHarnessError(f"{promql}: {len(result)} series, expected at most one")
        return float(result[0]["value"][1]) if result else None

    def scrapes(self, instance: str) -> int:
        """Successful scrapes of the target with this `instance` label so far."""
        got = self.scalar(f'sum_over_time(up{{instance="{instance}"}}[1d])')
        return int(got or 0)

    def wait_scrapes(self, instance: str, at_least: int, *, timeout: float = 30.0) -> int:
        """Wait until the target has been scraped successfully `at_least` times; the count."""
        deadline = time.monotonic() + timeout
        count = self.scrapes(instance)
        while count < at_least:
            if time.monotonic() > deadline:
                raise PrometheusHarnessError(
                    f"{instance}: {count} successful scrapes after {timeout:.0f}s, wanted "
                    f"{at_least}; targets: {self.targets()!r:.1500}\n{self.log_tail()}"
                )
            time.sleep(0.1)  # poll interval of a deadline loop
            count = self.scrapes(instance)
        return count

    def wait_fresh(self, *instances: str, timeout: float = 30.0) -> None:
        """Wait until each target has had a scrape that started after this call (see module doc)."""
        wanted = {instance: self.scrapes(instance) + 2 for instance in instances}
        for instance, at_least in wanted.items():
            self.wait_scrapes(instance, at_least, timeout=timeout)

    def targets(self) -> list[dict[str, Any]]:
        """The active targets with their health and last error (`/api/v1/targets`)."""
        active: list[dict[str, Any]] = self.api("targets")["activeTargets"]
        return active

    def rule_groups(self) -> list[dict[str, Any]]:
        """The loaded rule groups with each rule's health and state (`/api/v1/rules`)."""
        groups: list[dict[str, Any]] = self.api("rules")["groups"]
        return groups

    def alerts(self) -> list[dict[str, Any]]:
        """The pending and firing alerts (`/api/v1/alerts`)."""
        alerts: list[dict[str, Any]] = self.api("alerts")["alerts"]
        return alerts


@contextmanager
def running(
    state_dir: Path,
    jobs: Sequence[ScrapeJob],
    *,
    rule_files: Sequence[Path] = (),
    port: int | None = None,
    timeout: float = 30.0,
) -> Iterator[Prometheus]:
    """Start Prometheus scraping `jobs` each second, its TSDB under `state_dir`; stop it on exit.

    Prometheus 2.42 applies a target set on a fixed 5 s tick, so the first scrape comes ~5-6 s
    after start: start it before the targets, and share one per module."""
    binary = ensure_binary("prometheus")
    state_dir.mkdir(parents=True, exist_ok=True)
    port = port or ports.free_port()
    config = state_dir / "prometheus.yml"
    config.write_text(yaml.safe_dump(build_config(jobs, rule_files=rule_files), sort_keys=False))
    log_path = state_dir / "prometheus.log"
    proc = _start(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={state_dir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=info",
        ],
        log_path=log_path,
        cwd=state_dir,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc, log_path, what="prometheus", timeout=timeout)
        yield Prometheus(url=url, state_dir=state_dir, log_path=log_path, pid=proc.pid)
    finally:
        processes.stop_group(proc)


# ---- Pushgateway --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pushgateway:
    url: str
    log_path: Path
    pid: int

    @property
    def address(self) -> str:
        """`host:port`, as `prometheus_client.push_to_gateway` and `--pushgateway` take it."""
        return self.url.removeprefix("http://")

    def log_tail(self, lines: int = 40) -> str:
        return processes.log_tail(self.log_path, lines)

    def groups(self) -> list[dict[str, Any]]:
        """The pushed groups (`/api/v1/metrics`): each has `labels` (the grouping key with `job`),
        `push_time_seconds`, and one entry per metric family with its `type` and `metrics`."""
        doc = _get(f"{self.url}/api/v1/metrics")
        if not isinstance(doc, dict) or doc.get("status") != "success":
            raise PrometheusHarnessError(f"/api/v1/metrics: {doc!r:.500}")
        groups: list[dict[str, Any]] = doc["data"]
        return groups

    def group(self, **grouping_key: str) -> dict[str, Any] | None:
        """The group whose labels are exactly `grouping_key` (including `job`), if pushed."""
        for group in self.groups():
            if group.get("labels") == grouping_key:
                return group
        return None


@contextmanager
def running_pushgateway(
    state_dir: Path, *, port: int | None = None, timeout: float = 30.0
) -> Iterator[Pushgateway]:
    """Start a Pushgateway keeping pushes in memory; stop it on exit."""
    binary = ensure_binary(PUSHGATEWAY_BINARY)
    state_dir.mkdir(parents=True, exist_ok=True)
    port = port or ports.free_port()
    log_path = state_dir / "pushgateway.log"
    proc = _start(
        [
            binary,
            f"--web.listen-address=127.0.0.1:{port}",
            "--persistence.file=",
            "--log.level=info",
        ],
        log_path=log_path,
        cwd=state_dir,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc, log_path, what="pushgateway", timeout=timeout)
        yield Pushgateway(url=url, log_path=log_path, pid=proc.pid)
    finally:
        processes.stop_group(proc)
