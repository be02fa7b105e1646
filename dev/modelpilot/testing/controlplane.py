"""A real Kubernetes control plane on loopback, for the test fixtures and for `make cluster-up`.

etcd, kube-apiserver (RBAC, client certificates, a static admin token, service-account signing
keys so TokenRequest works), kube-controller-manager, kube-scheduler, and kwok, which plays the
kubelet for one fake node: pods get scheduled, become Running and Ready, and Job pods succeed.
The binaries come from `hack/build-binaries.sh` (built from Go modules and cached outside the repo).

Key design decision: every component runs in its own process group, and the groups are recorded in
`pids.json` in the state directory. Teardown signals whole groups; a small detached watchdog
process (started first) reads the same file and kills the groups, then removes a temporary state
directory, as soon as the owning Python process is gone. So a test session that crashes, is
SIGKILLed or times out still leaves no stray process and no temp dir; SIGTERM and atexit take the
ordinary teardown path.

    python -m modelpilot.testing.controlplane up   [--dir .cluster]   # writes .cluster/kubeconfig
    python -m modelpilot.testing.controlplane down [--dir .cluster]   # stops what `up` started
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime
import functools
import hashlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modelpilot.testing import node as real_node
from modelpilot.testing import ports, processes

REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO_ROOT / "hack" / "build-binaries.sh"
NODE_NAME = "kwok-node-0"
PIDS_FILE = "pids.json"
NODE_KINDS = ("kwok", "real")
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
ISSUER = "https://kubernetes.default.svc.cluster.local"
REQUIRED_BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
    "helm",
)


class ControlPlaneError(RuntimeError):
    """The control plane could not be built, started or used; the message says why."""


# ---- binaries -----------------------------------------------------------------------------------


@functools.cache
def ensure_binaries() -> Path:
    """The directory holding the binaries, building them first if the cache is cold.

    `MODELPILOT_K8S_BINARIES` names a ready directory and skips the script. The script prints its
    progress on stderr, which is left attached to the caller's terminal.
    """
    return processes.binaries_dir(
        BUILD_SCRIPT,
        REQUIRED_BINARIES,
        override=os.environ.get("MODELPILOT_K8S_BINARIES"),
        error=ControlPlaneError,
    )


# ---- certificates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pki:
    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    sa_key: Path
    sa_pub: Path
    clients: dict[str, tuple[Path, Path]]  # name -> (cert, key)


def _write_pki(
    directory: Path,
    clients: dict[str, tuple[str, str | None]],
    extra_ips: Sequence[str] = (),
) -> _Pki:
    """A CA, the API server's serving certificate, client certificates and the SA signing key.

    `clients` maps a file stem to (common name, organisation). ECDSA P-256 keys: fast to generate.
    """
    # Imported here so the watchdog and `down` do not pay for it.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    later = now + datetime.timedelta(days=365)

    def new_key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)

    def name(cn: str, org: str | None = None) -> x509.Name:
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
        if org:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
        return x509.Name(attrs)

    ca_key = new_key()
    ca_name = name("modelpilot-local-ca")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(later)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )

    def issue(
        stem: str, subject: x509.Name, *, server: bool, sans: Sequence[x509.GeneralName] = ()
    ) -> tuple[Path, Path]:
        key = new_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(later)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        write_key(key_path, key)
        return cert_path, key_path

    import ipaddress

    ca_cert_path, ca_key_path = directory / "ca.crt", directory / "ca.key"
    ca_cert_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    write_key(ca_key_path, ca_key)
    sans: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("10.96.0.1")),
        *(x509.IPAddress(ipaddress.ip_address(ip)) for ip in extra_ips),
        x509.DNSName("localhost"),
        x509.DNSName("kubernetes"),
        x509.DNSName("kubernetes.default"),
        x509.DNSName("kubernetes.default.svc"),
        x509.DNSName("kubernetes.default.svc.cluster.local"),
    ]
    serving_cert, serving_key = issue("apiserver", name("kube-apiserver"), server=True, sans=sans)
    issued = {stem: issue(stem, name(cn, org), server=False) for stem, (cn, org) in clients.items()}
    sa_key = new_key()
    sa_key_path, sa_pub_path = directory / "sa.key", directory / "sa.pub"
    write_key(sa_key_path, sa_key)
    sa_pub_path.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return _Pki(
        ca_cert=ca_cert_path,
        ca_key=ca_key_path,
        serving_cert=serving_cert,
        serving_key=serving_key,
        sa_key=sa_key_path,
        sa_pub=sa_pub_path,
        clients=issued,
    )


def _write_kubeconfig(
    path: Path,
    *,
    server: str,
    ca_file: Path,
    user: dict[str, str],
    name: str = "modelpilot-local",
) -> Path:
    """A kubeconfig with everything embedded (it stays valid if copied elsewhere)."""
    import base64

    def embed(value: str) -> str:
        return base64.b64encode(Path(value).read_bytes()).decode()

    user_entry = {
        (k.replace("-file", "") + "-data" if k.endswith("-file") else k): (
            embed(v) if k.endswith("-file") else v
        )
        for k, v in user.items()
    }
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": embed(str(ca_file)),
                },
            }
        ],
        "users": [{"name": name, "user": user_entry}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


# ---- processes ----------------------------------------------------------------------------------


def _proc_start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (guards against pid reuse), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


# Shutdown order matters: the API server's clients first, then the API server (while it drains
# it still needs etcd; with etcd gone first it retries for good), then etcd.
# The real node's namespace holder goes last: with it goes the node's network namespace and
# the veth the API server listens on, and an API server that lost its address waited 10 s for
# its own lease deletion before exiting.
_STOP_STAGES = (
    ("kwok", "kube-scheduler", "kube-controller-manager"),
    ("kube-apiserver",),
    ("etcd",),
    ("node-namespaces",),
)


def _stop_groups(
    groups: dict[str, int],
    *,
    procs: dict[str, subprocess.Popen[bytes]] | None = None,
    grace: float = 10.0,
) -> None:
    """Stop the groups stage by stage: SIGTERM, wait up to `grace` seconds, then SIGKILL."""
    staged = [[n for n in stage if n in groups] for stage in _STOP_STAGES]
    others = [n for n in groups if not any(n in stage for stage in staged)]
    for stage in [others, *staged]:
        if stage:
            _stop_stage({n: groups[n] for n in stage}, procs=procs or {}, grace=grace)


def _stop_stage(
    groups: dict[str, int], *, procs: dict[str, subprocess.Popen[bytes]], grace: float
) -> None:
    for pgid in groups.values():
        processes.signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for name, pgid in groups.items():
        proc = procs.get(name)
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=0.1)
                continue
            if not processes.group_alive(pgid):
                break
            time.sleep(0.05)
        if proc is not None:
            proc.poll()  # reap it, so that a zombie does not count as alive
        if processes.group_alive(pgid):
            print(f"controlplane: {name} survived SIGTERM for {grace:.0f}s", file=sys.stderr)
            processes.signal_group(pgid, signal.SIGKILL)
        if proc is not None:
            proc.wait()
    kill_deadline = time.monotonic() + 5.0
    while time.monotonic() < kill_deadline and any(map(processes.group_alive, groups.values())):
        time.sleep(0.05)


@dataclass
class _PidFile:
    """`pids.json`: the process groups of a plane, and who owns them (for the watchdog)."""

    path: Path
    owner: int | None
    owner_start: str | None
    remove_dir: bool
    groups: dict[str, int] = field(default_factory=dict)
    commands: dict[str, str] = field(default_factory=dict)

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "owner": self.owner,
                    "owner_start": self.owner_start,
                    "remove_dir": self.remove_dir,
                    "groups": self.groups,
                    "commands": self.commands,
                },
                indent=1,
            )
        )
        tmp.replace(self.path)

    @classmethod
    def load(cls, path: Path) -> _PidFile:
        data = json.loads(path.read_text())
        return cls(
            path=path,
            owner=data.get("owner"),
            owner_start=data.get("owner_start"),
            remove_dir=bool(data.get("remove_dir")),
            groups={k: int(v) for k, v in data.get("groups", {}).items()},
            commands=dict(data.get("commands", {})),
        )

    def live_groups(self) -> dict[str, int]:
        """The recorded groups whose leader still runs the recorded command (no pid reuse)."""
        live: dict[str, int] = {}
        for name, pgid in self.groups.items():
            try:
                argv0 = Path(f"/proc/{pgid}/cmdline").read_bytes().split(b"\0", 1)[0].decode()
            except OSError:
                argv0 = ""
            if argv0 == self.commands.get(name) or (not argv0 and processes.group_alive(pgid)):
                live[name] = pgid
        return live


# ---- the plane ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ControlPlane:
    """A running control plane. Use `running()` (tests) or `up`/`down` (people)."""

    state_dir: Path
    kubeconfig: Path
    server: str
    binaries: Path
    ca_file: Path
    admin_token: str
    log_dir: Path
    startup_seconds: float
    startup_marks: tuple[tuple[str, float], ...] = ()  # (what became ready, seconds after start)
    node: real_node.RealNode | None = None  # the real node (node="real"); None with kwok

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "HELM_"))}
        helm_home = self.state_dir / "helm"
        env.update(
            KUBECONFIG=str(self.kubeconfig),
            HELM_CACHE_HOME=str(helm_home / "cache"),
            HELM_CONFIG_HOME=str(helm_home / "config"),
            HELM_DATA_HOME=str(helm_home / "data"),
            PATH=f"{self.binaries}{os.pathsep}{env.get('PATH', '')}",
        )
        return env

    def _run(
        self, argv: list[str], *, check: bool, input: str | None, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            env=self._env(),
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            shown = " ".join([Path(argv[0]).name, *argv[1:]])
            raise ControlPlaneError(
                f"`{shown}` failed with exit code {proc.returncode}: {proc.stderr.strip()}"
            )
        return proc

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl as the cluster admin; ControlPlaneError on failure if `check`."""
        argv = [
            str(self.binaries / "kubectl"),
            f"--kubeconfig={self.kubeconfig}",
            f"--cache-dir={self.state_dir / 'kube-cache'}",
            *args,
        ]
        return self._run(argv, check=check, input=input, timeout=timeout)

    def helm(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 300.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the real helm as the cluster admin (its caches live in the state directory)."""
        argv = [str(self.binaries / "helm"), f"--kubeconfig={self.kubeconfig}", *args]
        return self._run(argv, check=check, input=input, timeout=timeout)

    def wait_established(self, *crds: str, timeout: float = 60.0) -> None:
        """Wait until each CRD (by name) reports Established=True.

        Not `kubectl wait --for=condition=Established`: kubectl 1.36 fails at once with
        ".status.conditions accessor error: <nil>" when it reads a CRD before the apiextensions
        controller has written any condition, which happens right after an apply on a busy
        machine (the demo failed on it from a fresh clone).
        """
        query = '-o=jsonpath={.status.conditions[?(@.type=="Established")].status}'
        deadline = time.monotonic() + timeout
        pending = list(crds)
        while pending:
            result = self.kubectl("get", "crd", pending[0], query, check=False)
            if result.returncode == 0 and result.stdout.strip() == "True":
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"CRD {pending[0]} not Established after {timeout:.0f}s: "
                    f"{(result.stdout + result.stderr).strip()[-300:]}"
                )
            time.sleep(0.2)

    def token_for(self, service_account: str, namespace: str) -> str:
        """A token for the service account, issued by the TokenRequest API."""
        return self.kubectl("create", "token", service_account, "-n", namespace).stdout.strip()

    def kubeconfig_for_token(self, token: str) -> Path:
        """A kubeconfig that authenticates with `token` (and nothing else)."""
        digest = hashlib.sha256(token.encode()).hexdigest()[:12]
        return _write_kubeconfig(
            self.state_dir / f"kubeconfig-token-{digest}",
            server=self.server,
            ca_file=self.ca_file,
            user={"token": token},
        )

    def api_get(self, path: str, *, token: str | None = None) -> tuple[int, Any]:
        """GET `path` from the API server (as admin, or with `token`): (status, decoded JSON)."""
        api = _Api(server=self.server, ca_file=self.ca_file, token=token or self.admin_token)
        return api.request("GET", path)

    def logs_tail(self, lines: int = 25) -> str:
        """The last lines of each component's log, for a failing test's report."""
        parts = []
        for log in sorted(self.log_dir.glob("*.log")):
            try:
                tail = log.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            parts.append(f"==> {log.name} <==\n" + "\n".join(tail))
        return "\n\n".join(parts)


@dataclass(frozen=True)
class _Api:
    """A bare JSON client for the API server (the harness needs no Kubernetes client library)."""

    server: str
    ca_file: Path
    token: str

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(HTTP status, decoded JSON body, or the text if it is not JSON)."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.server + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, context=context, timeout=5) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        try:
            return status, json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return status, raw.decode(errors="replace")


def _poll(
    what: str,
    check: Callable[[], bool],
    *,
    deadline: float,
    procs: dict[str, subprocess.Popen[bytes]],
    log_dir: Path,
    marks: list[tuple[str, float]],
    started: float,
) -> None:
    """Call `check` until it is true; fail early, with the log tail, if a component exits.

    Appends (what, seconds since `started`) to `marks` once it holds.
    """
    while True:
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise ControlPlaneError(
                    f"{name} exited with code {proc.returncode} while waiting for {what}:\n"
                    + _tail(log_dir / f"{name}.log")
                )
        try:
            if check():
                marks.append((what, round(time.monotonic() - started, 2)))
                return
        except (OSError, urllib.error.URLError, ValueError):
            pass
        if time.monotonic() > deadline:
            logs = "\n".join(_tail(p, 15) for p in sorted(log_dir.glob("*.log")))
            raise ControlPlaneError(f"timed out waiting for {what}:\n{logs}")
        time.sleep(0.1)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return f"({path.name}: no log)"
    return f"==> {path.name} <==\n" + "\n".join(text)


def _https_ok(url: str) -> bool:
    """True if `url` answers 200; the component's self-signed serving cert is not checked."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(url, context=context, timeout=2) as resp:
        return bool(resp.status == 200)


def _fake_node() -> dict[str, Any]:
    resources = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": NODE_NAME,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": NODE_NAME,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "spec": {},
        "status": {
            "allocatable": resources,
            "capacity": resources,
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": "fake",
                "kubeProxyVersion": "fake",
            },
        },
    }


class _Launcher:
    """Starts the components one by one, recording each process group as it goes."""

    def __init__(self, *, state_dir: Path, pidfile: _PidFile) -> None:
        self.state_dir = state_dir
        self.log_dir = state_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.pidfile = pidfile
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], *, exe: str | None = None) -> None:
        """Start `argv` in its own process group; `exe` is what it execs into (nsenter ...)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
        env["HOME"] = str(self.state_dir)  # kwok and friends must not read the user's dotfiles
        with (self.log_dir / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.state_dir,
                env=env,
                start_new_session=True,  # its own process group: teardown signals the group
            )
        self.procs[name] = proc
        self.pidfile.groups[name] = proc.pid
        self.pidfile.commands[name] = exe or argv[0]
        self.pidfile.save()

    def stop(self) -> None:
        names = list(reversed(self.procs))
        _stop_groups(
            {n: self.pidfile.groups[n] for n in names},
            procs={n: self.procs[n] for n in names},
        )
        self.procs.clear()
        self.pidfile.groups.clear()
        self.pidfile.commands.clear()
        self.pidfile.save()


def _start_plane(
    *, state_dir: Path, binaries: Path, launcher: _Launcher, timeout: float, node: str = "kwok"
) -> ControlPlane:
    """Start the plane; start again, on fresh ports, if a port was taken in the meantime.

    Ports are picked free and bound a few seconds later, by which time another process (another
    test session, an outgoing connection) may own one; that shows as "address already in use".
    """
    for attempt in (1, 2, 3):
        try:
            return _start_plane_once(
                state_dir=state_dir,
                binaries=binaries,
                launcher=launcher,
                timeout=timeout,
                node=node,
            )
        except ControlPlaneError as exc:
            if "address already in use" not in str(exc) or attempt == 3:
                raise
            launcher.stop()
            real_node.cleanup(state_dir)
            for sub in ("etcd", "pki", "kubeconfigs", "logs", "node"):
                shutil.rmtree(state_dir / sub, ignore_errors=True)
            launcher.log_dir.mkdir(parents=True, exist_ok=True)
    raise AssertionError("unreachable")


def _start_plane_once(
    *, state_dir: Path, binaries: Path, launcher: _Launcher, timeout: float, node: str
) -> ControlPlane:
    started = time.monotonic()
    deadline = started + timeout
    clients: dict[str, tuple[str, str | None]] = {
        "admin": ("modelpilot-admin", "system:masters"),
        "controller-manager": ("system:kube-controller-manager", None),
        "scheduler": ("system:kube-scheduler", None),
        "kwok": ("modelpilot-kwok", "system:masters"),
        # The aggregation layer's client identity (webhooks, aggregated APIs).
        "front-proxy-client": ("front-proxy-client", None),
    }
    node_state: real_node.NodeState | None = None
    api_host = "127.0.0.1"
    if node == "real":
        node_binaries = real_node.ensure_binaries()
        # The node's namespaces and veth first: the API server listens on the veth's host end.
        node_state = real_node.prepare(state_dir, launcher)
        api_host = node_state.host_ip
        clients.update(
            {
                "kubelet": (f"system:node:{real_node.NODE_NAME}", "system:nodes"),
                "kube-proxy": ("system:kube-proxy", None),
                "coredns": ("modelpilot:coredns", None),
                "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", "system:masters"),
            }
        )
    pki = _write_pki(
        state_dir / "pki", clients, extra_ips=[api_host] if node_state is not None else []
    )
    admin_token = os.urandom(24).hex()
    tokens = state_dir / "pki" / "tokens.csv"
    tokens.write_text(f"{admin_token},modelpilot-admin,modelpilot-admin,system:masters\n")
    tokens.chmod(0o600)

    etcd_port, peer_port, api_port = ports.free_port(), ports.free_port(), ports.free_port()
    cm_port, sched_port = ports.free_port(), ports.free_port()
    server = f"https://{api_host}:{api_port}"
    api = _Api(server=server, ca_file=pki.ca_cert, token=admin_token)
    kube = state_dir / "kubeconfigs"
    kube.mkdir(exist_ok=True)

    def client_kubeconfig(stem: str) -> Path:
        cert, key = pki.clients[stem]
        return _write_kubeconfig(
            kube / f"{stem}.kubeconfig",
            server=server,
            ca_file=pki.ca_cert,
            user={"client-certificate-file": str(cert), "client-key-file": str(key)},
        )

    admin_kubeconfig = client_kubeconfig("admin")
    kubeconfig = state_dir / "kubeconfig"
    shutil.copyfile(admin_kubeconfig, kubeconfig)
    kubeconfig.chmod(0o600)

    marks: list[tuple[str, float]] = []
    poll = functools.partial(
        _poll,
        deadline=deadline,
        procs=launcher.procs,
        log_dir=launcher.log_dir,
        marks=marks,
        started=started,
    )
    etcd_url = f"http://127.0.0.1:{etcd_port}"
    launcher.start(
        "etcd",
        [
            str(binaries / "etcd"),
            "--name=default",
            f"--data-dir={state_dir / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
            "--unsafe-no-fsync",  # a throw-away store: durability buys nothing here
            "--log-level=warn",
        ],
    )

    def etcd_healthy() -> bool:
        with urllib.request.urlopen(f"{etcd_url}/health", timeout=1) as resp:
            return bool(json.loads(resp.read()).get("health") == "true")

    poll("etcd health", etcd_healthy)

    launcher.start(
        "kube-apiserver",
        [
            str(binaries / "kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            f"--bind-address={api_host}",
            f"--advertise-address={api_host}",
            f"--secure-port={api_port}",
            f"--cert-dir={state_dir / 'pki'}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            f"--token-auth-file={tokens}",
            "--authorization-mode=Node,RBAC",
            f"--service-account-issuer={ISSUER}",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            f"--api-audiences={ISSUER}",
            f"--requestheader-client-ca-file={pki.ca_cert}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki.clients['front-proxy-client'][0]}",
            f"--proxy-client-key-file={pki.clients['front-proxy-client'][1]}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true",
            # No endpoint reconciler: a loopback address is no valid endpoint, and with the real
            # node's address the lease reconciler held up the API server's exit by 10 s;
            # node.start writes the `kubernetes` Service's EndpointSlice itself.
            "--endpoint-reconciler-type=none",
            *(
                []
                if node_state is None
                else [
                    f"--kubelet-client-certificate={pki.clients['apiserver-kubelet-client'][0]}",
                    f"--kubelet-client-key={pki.clients['apiserver-kubelet-client'][1]}",
                    "--kubelet-preferred-address-types=InternalIP",
                ]
            ),
            "--enable-priority-and-fairness=false",
            "--profiling=false",
            "--v=1",
        ],
    )

    def api_ready() -> bool:
        status, _ = api.request("GET", "/readyz")
        return status == 200

    poll("kube-apiserver /readyz", api_ready)

    cm_kubeconfig = client_kubeconfig("controller-manager")
    launcher.start(
        "kube-controller-manager",
        [
            str(binaries / "kube-controller-manager"),
            f"--kubeconfig={cm_kubeconfig}",
            f"--authentication-kubeconfig={cm_kubeconfig}",
            f"--authorization-kubeconfig={cm_kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={cm_port}",
            f"--cert-dir={state_dir / 'pki' / 'controller-manager'}",
            "--leader-elect=false",
            "--controllers=*",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki.sa_key}",
            f"--root-ca-file={pki.ca_cert}",
            f"--cluster-signing-cert-file={pki.ca_cert}",
            f"--cluster-signing-key-file={pki.ca_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # Client rate limits far above the defaults (20/30): each controller has its own
            # client (service-account credentials); at 100 req/s the Deployment controller alone
            # would need 80 s or more for 1,000 ModelDeployments (2,000 ReplicaSets, ~3 status
            # writes per Deployment measured); the CPU, not a client-side limiter, is the bound.
            "--kube-api-qps=2000",
            "--kube-api-burst=4000",
            "--v=1",
        ],
    )
    sched_kubeconfig = client_kubeconfig("scheduler")
    launcher.start(
        "kube-scheduler",
        [
            str(binaries / "kube-scheduler"),
            f"--kubeconfig={sched_kubeconfig}",
            f"--authentication-kubeconfig={sched_kubeconfig}",
            f"--authorization-kubeconfig={sched_kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={sched_port}",
            f"--cert-dir={state_dir / 'pki' / 'scheduler'}",
            "--leader-elect=false",
            # Default 50/100: 2,000 bindings and their Events would take 40 s or more.
            "--kube-api-qps=2000",
            "--kube-api-burst=4000",
            "--v=1",
        ],
    )

    def default_service_account() -> bool:
        path = "/api/v1/namespaces/default/serviceaccounts/default"
        return api.request("GET", path)[0] == 200

    poll(
        "kube-controller-manager /healthz",
        lambda: _https_ok(f"https://127.0.0.1:{cm_port}/healthz"),
    )
    poll("kube-scheduler /healthz", lambda: _https_ok(f"https://127.0.0.1:{sched_port}/healthz"))
    node_handle: real_node.RealNode | None = None
    if node_state is None:
        _start_kwok(launcher, binaries, client_kubeconfig("kwok"), api, poll)
    else:

        def admin_kubectl(
            *args: str, check: bool = True, input: str | None = None
        ) -> subprocess.CompletedProcess[str]:
            argv = [str(binaries / "kubectl"), f"--kubeconfig={kubeconfig}", *args]
            proc = subprocess.run(
                argv, input=input, capture_output=True, text=True, timeout=60, check=False
            )
            if check and proc.returncode != 0:
                raise ControlPlaneError(f"`kubectl {' '.join(args)}` failed: {proc.stderr}")
            return proc

        node_handle = real_node.start(
            state_dir=state_dir,
            state=node_state,
            launcher=launcher,
            binaries=node_binaries,
            server=server,
            pki={"ca": pki.ca_cert},
            client_kubeconfig=client_kubeconfig,
            admin_kubectl=admin_kubectl,
            poll=poll,
        )
    poll("the default ServiceAccount (controller-manager)", default_service_account)

    return ControlPlane(
        state_dir=state_dir,
        kubeconfig=kubeconfig,
        server=server,
        binaries=binaries,
        ca_file=pki.ca_cert,
        admin_token=admin_token,
        log_dir=launcher.log_dir,
        startup_seconds=time.monotonic() - started,
        startup_marks=tuple(marks),
        node=node_handle,
    )


def _start_kwok(
    launcher: _Launcher,
    binaries: Path,
    kubeconfig: Path,
    api: _Api,
    poll: Callable[[str, Callable[[], bool]], None],
) -> None:
    """kwok and its fake Ready node (the default, node="kwok")."""
    launcher.start(
        "kwok",
        [
            str(binaries / "kwok"),
            f"--kubeconfig={kubeconfig}",
            f"--config={binaries / 'kwok-stages.yaml'}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--node-ip=127.0.0.1",
            f"--cidr={POD_CIDR}",
            # Renew a node Lease as a kubelet does. Without it the node-lifecycle controller falls
            # back to status heartbeats, which kwok's stages post too slowly on a loaded machine:
            # after the 50 s grace period the node went NotReady and every pod with it.
            "--node-lease-duration-seconds=40",
        ],
    )
    status, body = api.request("POST", "/api/v1/nodes", _fake_node())
    if status not in (201, 409):
        raise ControlPlaneError(f"creating the fake node failed ({status}): {body}")

    def node_ready() -> bool:
        _, node = api.request("GET", f"/api/v1/nodes/{NODE_NAME}")
        conditions = (node or {}).get("status", {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    poll(f"node {NODE_NAME} Ready (kwok)", node_ready)


def _start_watchdog(state_dir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelpilot.testing.controlplane",
            "_watchdog",
            "--dir",
            str(state_dir),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # survives a kill of the owner's process group
    )


@contextlib.contextmanager
def running(
    state_dir: Path | None = None,
    *,
    binaries: Path | None = None,
    timeout: float = 90.0,
    node: str = "kwok",
) -> Iterator[ControlPlane]:
    """Start a control plane; stop it, and remove a temporary state dir, on exit.

    `state_dir=None` uses a fresh temporary directory, removed at teardown (logs included: attach
    `logs_tail()` to a report before leaving the block). `binaries=None` builds or reuses them.
    `node="kwok"` (default): one fake node; `node="real"`: a real node (kubelet, containerd,
    runc, CNI bridge, kube-proxy, CoreDNS; root only), see `modelpilot.testing.node`.
    """
    if node not in NODE_KINDS:
        raise ControlPlaneError(f"node must be one of {', '.join(NODE_KINDS)}, not {node!r}")
    binaries = binaries or ensure_binaries()
    temporary = state_dir is None
    state = Path(tempfile.mkdtemp(prefix="modelpilot-k8s-")) if state_dir is None else state_dir
    state.mkdir(parents=True, exist_ok=True)
    pidfile = _PidFile(
        path=state / PIDS_FILE,
        owner=os.getpid(),
        owner_start=_proc_start_time(os.getpid()),
        remove_dir=temporary,
    )
    pidfile.save()
    watchdog = _start_watchdog(state)
    launcher = _Launcher(state_dir=state, pidfile=pidfile)
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if stopped:
            return
        stopped = True
        launcher.stop()
        left = real_node.cleanup(state)
        if left:
            print(f"controlplane: node cleanup left {'; '.join(left)}", file=sys.stderr)
        pidfile.path.unlink(missing_ok=True)
        watchdog.terminate()
        watchdog.wait()
        if temporary:
            shutil.rmtree(state, ignore_errors=True)

    atexit.register(stop)
    previous: Any = None
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:

        def on_sigterm(signum: int, frame: object) -> None:
            # Unwind like Ctrl-C so that every `finally` (this one included) runs.
            raise KeyboardInterrupt(f"signal {signum}")

        previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield _start_plane(
            state_dir=state, binaries=binaries, launcher=launcher, timeout=timeout, node=node
        )
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
        stop()
        atexit.unregister(stop)


# ---- command line: up / down / _watchdog ---------------------------------------------------------


def _cmd_up(state_dir: Path, binaries: Path | None, timeout: float, node: str = "kwok") -> int:
    pid_path = state_dir / PIDS_FILE
    if pid_path.exists():
        live = _PidFile.load(pid_path).live_groups()
        if live:
            print(f"already up: {', '.join(live)} running; kubeconfig {state_dir / 'kubeconfig'}")
            return 0
    if state_dir.exists():
        shutil.rmtree(state_dir)
    state_dir.mkdir(parents=True)
    binaries = binaries or ensure_binaries()
    pidfile = _PidFile(path=pid_path, owner=None, owner_start=None, remove_dir=False)
    pidfile.save()
    launcher = _Launcher(state_dir=state_dir, pidfile=pidfile)
    try:
        plane = _start_plane(
            state_dir=state_dir, binaries=binaries, launcher=launcher, timeout=timeout, node=node
        )
    except BaseException:
        launcher.stop()
        real_node.cleanup(state_dir)
        pid_path.unlink(missing_ok=True)
        raise
    # Detach: the components outlive this process; `down` stops them through pids.json.
    for proc in launcher.procs.values():
        proc.returncode = 0  # silence Popen's "still running" warning; we never wait on them
    print(f"control plane ready in {plane.startup_seconds:.1f}s at {plane.server}")
    print("  " + ", ".join(f"{what} {at:.1f}s" for what, at in plane.startup_marks))
    # kubectl, helm and friends on a short path, for `export PATH=$PWD/.cluster/bin:$PATH`.
    bin_dir = state_dir / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in REQUIRED_BINARIES:
        (bin_dir / name).symlink_to(plane.binaries / name)
    print(f"  kubeconfig: {plane.kubeconfig}")
    print(f"  binaries:   {bin_dir} -> {plane.binaries}")
    print(f"  logs:       {plane.log_dir}")
    print(f"  try: export PATH={bin_dir}:$PATH KUBECONFIG={plane.kubeconfig}; kubectl get nodes")
    if plane.node is not None:
        print(
            f"  real node {plane.node.name} at {plane.node.node_ip}: "
            + ", ".join(f"{what} {at:.1f}s" for what, at in plane.node.startup_marks)
        )
        print(
            "  images: python -m modelpilot.testing.node import-image "
            f"--dir {state_dir} ARCHIVE [--name REF]"
        )
    return 0


def _cmd_down(state_dir: Path) -> int:
    pid_path = state_dir / PIDS_FILE
    if not pid_path.exists():
        print(f"nothing to stop: no {pid_path}")
        return 0
    pidfile = _PidFile.load(pid_path)
    live = pidfile.live_groups()
    _stop_groups(live)
    left = [n for n, g in live.items() if processes.group_alive(g)]
    left += real_node.cleanup(state_dir)
    if left:
        print(f"could not stop or remove {', '.join(left)}", file=sys.stderr)
        return 1
    shutil.rmtree(state_dir, ignore_errors=True)
    print(f"stopped {len(live)} component(s); removed {state_dir}")
    return 0


def _cmd_watchdog(state_dir: Path) -> int:
    """Wait for the owner to die; then kill the recorded groups (and the temp dir)."""
    pid_path = state_dir / PIDS_FILE
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # the owner's normal teardown
    while True:
        try:
            pidfile = _PidFile.load(pid_path)
        except (OSError, ValueError):
            return 0  # the owner tore down normally
        owner = pidfile.owner
        if owner is None:
            return 0
        if _proc_start_time(owner) != pidfile.owner_start:
            _stop_groups(pidfile.live_groups())
            real_node.cleanup(state_dir)
            pid_path.unlink(missing_ok=True)
            if pidfile.remove_dir:
                shutil.rmtree(state_dir, ignore_errors=True)
            return 0
        time.sleep(0.5)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m modelpilot.testing.controlplane",
        description="Start or stop the local Kubernetes control plane.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start it; writes DIR/kubeconfig and DIR/pids.json")
    up.add_argument("--dir", type=Path, default=Path(".cluster"))
    up.add_argument("--binaries", type=Path, default=None, help="default: hack/build-binaries.sh")
    up.add_argument("--timeout", type=float, default=90.0)
    up.add_argument(
        "--node",
        choices=NODE_KINDS,
        default="kwok",
        help="kwok: one fake node (default); real: kubelet, containerd, CNI, kube-proxy, CoreDNS",
    )
    down = sub.add_parser("down", help="stop what `up` started and remove DIR")
    down.add_argument("--dir", type=Path, default=Path(".cluster"))
    watchdog = sub.add_parser("_watchdog")
    watchdog.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            return _cmd_up(args.dir.resolve(), args.binaries, args.timeout, args.node)
        if args.command == "down":
            return _cmd_down(args.dir.resolve())
        return _cmd_watchdog(args.dir.resolve())
    except (ControlPlaneError, real_node.NodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
