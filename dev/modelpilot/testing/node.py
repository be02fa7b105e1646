"""A real node for the local control plane: kubelet, containerd + runc, a CNI bridge, kube-proxy
(iptables mode) and CoreDNS, so that pods are real containers with cluster networking and DNS.

Started by `controlplane.running(node="real")` (tests: the `real_node_plane` fixture) and by
`make cluster-up NODE=real`; the binaries come from `hack/node-binaries.sh` (kubelet, kube-proxy,
coredns, built from Go modules and cached) and Debian packages (`hack/node-deps.sh`).

Key design decision: the node lives in a network namespace and a mount namespace of its own,
held by a `sleep` started with `unshare`, and every node process is started into them with
`nsenter`. The node's iptables rules (kube-proxy's, the bridge plugin's masquerade), its bridge
`cni0`, the pods' veths and every mount the kubelet and containerd make (volumes, overlay
root filesystems, pod network namespaces, tmpfs over /var/log and /var/lib/cni) exist only in
those namespaces: the host keeps one veth pair (`mpn-*`, a /30 from a range no host route
uses), whose far end is the node's eth0, and the namespaces vanish with their last process.
Only loopback-like traffic: the node has no default route, and CoreDNS has no upstream.

The API server listens on the host end of the veth (so that the node and the pods, through
the `kubernetes` Service, can reach it); pods, from 10.244.0.0/24, are masqueraded to the
node's address by the bridge plugin. Pods' cgroups live under /modelpilot-node-<id> in each
cgroup v1 hierarchy; containerd's shims are found by their namespaces. Teardown (`cleanup`),
also run by the control plane's watchdog and `down`: kill the pods' processes by cgroup and
everything left in the node's namespaces, remove the cgroups, restore the kernel settings the
kubelet changes (vm.overcommit_memory, kernel.panic, ...), and delete the state. `node.json`
in the state directory records what `cleanup` needs, so a crashed owner still leaves nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import gzip
import hashlib
import io
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from modelpilot.testing import processes

REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO_ROOT / "hack" / "node-binaries.sh"
NODE_NAME = "modelpilot-node-0"
POD_CIDR = "10.244.0.0/24"
CLUSTER_DNS = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
STATE_FILE = "node.json"
DATA_ROOT = "/var/lib/mpn"
PAUSE_IMAGE = "modelpilot.local/pause:busybox"
TEST_IMAGE = "modelpilot.local/busybox:test"
NODE_BINARIES = ("kubelet", "kube-proxy", "coredns")
CGROUP_ROOT = Path("/sys/fs/cgroup")
# The kernel settings the kubelet sets when protectKernelDefaults is false (its
# setupKernelTunables): saved before it starts, written back at teardown.
KERNEL_TUNABLES = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
# Where the veth between host and node takes its /30: the first one that no host address or
# route overlaps (checked at start; CGNAT space, which nothing on these machines uses).
LINK_SUPERNET = ipaddress.IPv4Network("100.115.0.0/16")


class NodeError(RuntimeError):
    """The node could not be built, started or used; the message says why."""


class Launcher(Protocol):
    """What the node needs from the control plane's launcher (controlplane._Launcher)."""

    log_dir: Path
    procs: dict[str, subprocess.Popen[bytes]]

    def start(self, name: str, argv: list[str], *, exe: str | None = None) -> None: ...


# ---- binaries, images ---------------------------------------------------------------------------


@functools.cache
def ensure_binaries() -> Path:
    """The directory with kubelet, kube-proxy and coredns (built first if the cache is cold).

    Also installs the Debian packages (containerd, runc, CNI plugins, iptables) when missing.
    `MODELPILOT_NODE_BINARIES` names a ready directory and skips the build (not the packages).
    """
    override = os.environ.get("MODELPILOT_NODE_BINARIES")
    if override:
        _run(["bash", str(REPO_ROOT / "hack" / "node-deps.sh"), "--quiet"])
    return processes.binaries_dir(
        BUILD_SCRIPT, NODE_BINARIES, override=override, error=NodeError, what="node binaries"
    )


def _cache_dir() -> Path:
    root = os.environ.get("MODELPILOT_CACHE") or str(Path.home() / ".cache" / "modelpilot")
    return Path(root) / "node-images"


def busybox_image(name: str, cmd: Sequence[str], *, out_dir: Path | None = None) -> Path:
    """An OCI archive (for `ctr images import`) of a one-layer image: Debian's static busybox.

    The layer holds /bin/busybox, a symlink per applet, /etc/passwd and /etc/group (root and
    nobody) and empty /tmp, /www. Cached by the busybox binary, `name` and `cmd`; no registry,
    no podman. Used for the pause image and the tests' web server.
    """
    busybox = Path("/bin/busybox")
    if not busybox.is_file():
        raise NodeError("/bin/busybox missing: run hack/node-deps.sh (busybox-static)")
    blob = busybox.read_bytes()
    key = hashlib.sha256(blob + json.dumps([name, list(cmd)]).encode()).hexdigest()[:16]
    directory = out_dir or _cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    archive = directory / f"{name.replace('/', '_').replace(':', '_')}-{key}.oci.tar"
    if archive.is_file():
        return archive
    applets = subprocess.run(
        [str(busybox), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()

    layer_buf = io.BytesIO()
    with tarfile.open(fileobj=layer_buf, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add_dir(path: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(path)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, 0
            tar.addfile(info)

        def add_file(path: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), mode, 0
            tar.addfile(info, io.BytesIO(data))

        for d in ("bin", "etc", "www", "proc", "sys", "dev"):
            add_dir(d)
        add_dir("tmp", 0o1777)
        add_file("bin/busybox", blob, 0o755)
        for applet in sorted(set(applets) - {"busybox"}):
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname, info.mode, info.mtime = tarfile.SYMTYPE, "busybox", 0o777, 0
            tar.addfile(info)
        add_file("etc/passwd", b"root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
        add_file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        add_file("www/index.html", b"hello from a real container\n")
    layer = layer_buf.getvalue()
    layer_gz = gzip.compress(layer, mtime=0)

    def digest(data: bytes) -> str:
        return "sha256:" + hashlib.sha256(data).hexdigest()

    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": list(cmd), "Env": ["PATH=/bin"], "WorkingDir": "/"},
            "rootfs": {"type": "layers", "diff_ids": [digest(layer)]},
        },
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": digest(layer_gz),
                    "size": len(layer_gz),
                }
            ],
        },
        sort_keys=True,
    ).encode()
    index = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": digest(manifest),
                    "size": len(manifest),
                    "annotations": {"org.opencontainers.image.ref.name": name},
                    "platform": {"architecture": "amd64", "os": "linux"},
                }
            ],
        },
        sort_keys=True,
    ).encode()
    tmp = archive.with_suffix(".tmp")
    with tarfile.open(tmp, mode="w") as out:

        def put(path: str, data: bytes) -> None:
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            out.addfile(info, io.BytesIO(data))

        put("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        put("index.json", index)
        for data in (config, manifest, layer_gz):
            put(f"blobs/sha256/{digest(data).split(':')[1]}", data)
    tmp.replace(archive)
    return archive


# ---- small helpers ------------------------------------------------------------------------------


def _run(argv: Sequence[str], *, check: bool = True, timeout: float = 60.0) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise NodeError(f"`{' '.join(argv)}` failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def _ns_inode(pid: int, kind: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except OSError:
        return None


def _pick_link() -> ipaddress.IPv4Network:
    """A /30 in LINK_SUPERNET that overlaps no address or route of the host."""
    used: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for line in _run(["ip", "-4", "-o", "addr", "show"]).splitlines():
        parts = line.split()
        if "inet" in parts:
            used.append(ipaddress.ip_network(parts[parts.index("inet") + 1], strict=False))
    for line in _run(["ip", "-4", "route", "show", "table", "all"]).splitlines():
        first = line.split()[0] if line.split() else ""
        if first in ("local", "broadcast", "unreachable", "blackhole", "prohibit"):
            first = line.split()[1]
        if first == "default":
            continue
        with contextlib.suppress(ValueError):
            used.append(ipaddress.ip_network(first, strict=False))
    for candidate in LINK_SUPERNET.subnets(new_prefix=30):
        if not any(candidate.overlaps(u) for u in used):
            return candidate
    raise NodeError(f"no free /30 in {LINK_SUPERNET} for the node's link")


def _hierarchies() -> list[Path]:
    """Every mounted cgroup hierarchy (v1 controllers, name=systemd, and the unified one)."""
    found = []
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2] in ("cgroup", "cgroup2"):
            found.append(Path(fields[1]))
    return found


def _cgroup_pids(relative: str) -> set[int]:
    pids: set[int] = set()
    for hierarchy in _hierarchies():
        top = hierarchy / relative.lstrip("/")
        if not top.is_dir():
            continue
        for procs in top.rglob("cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(p) for p in procs.read_text().split())
    return pids


def _remove_cgroups(relative: str) -> list[str]:
    """rmdir the cgroup subtree in every hierarchy, deepest first; returns what is left."""
    left = []
    for hierarchy in _hierarchies():
        top = hierarchy / relative.lstrip("/")
        if not top.is_dir():
            continue
        dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for directory in [*dirs, top]:
            for _ in range(50):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)
            if directory.exists():
                left.append(str(directory))
    return left


def _pids_in_namespaces(inodes: dict[str, int]) -> set[int]:
    """Processes in any of the given namespaces ({"net": inode, "mnt": inode})."""
    found = set()
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        pid = int(entry.name)
        for kind, inode in inodes.items():
            if _ns_inode(pid, kind) == inode:
                found.add(pid)
                break
    return found


def _kill_until_gone(find: Callable[[], set[int]], timeout: float = 15.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while True:
        pids = find()
        if not pids or time.monotonic() > deadline:
            return pids
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


# ---- the node's state (node.json) ---------------------------------------------------------------


@dataclass
class NodeState:
    """What teardown needs, written before anything is started."""

    path: Path
    node_id: str
    veth: str
    link: str  # the /30
    host_ip: str
    node_ip: str
    cgroup: str  # /modelpilot-node-<id>
    tunables: dict[str, str]
    # /var/lib/mpn/<id>: containerd's and the kubelet's data and sockets. Not in the state dir:
    # a unix socket path has at most 104 bytes, and pytest's tmp paths are longer.
    data_dir: str = ""
    holder_pid: int | None = None
    netns: int | None = None
    mntns: int | None = None

    def save(self) -> None:
        data = {k: v for k, v in self.__dict__.items() if k != "path"}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(self.path)

    @classmethod
    def load(cls, path: Path) -> NodeState:
        return cls(path=path, **json.loads(path.read_text()))


def prepare(state_dir: Path, launcher: Launcher) -> NodeState:
    """The node's namespaces, its veth (host end addressed, for the API server) and cgroup root.

    Called before the API server starts, since it listens on `host_ip`.
    """
    node_id = os.urandom(3).hex()
    # Two nodes starting at once (two test sessions) must not pick the same /30: hold a lock
    # from the pick until the host end carries its address.
    Path(DATA_ROOT).mkdir(parents=True, exist_ok=True)
    lock = os.open(f"{DATA_ROOT}/.link.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _prepare_locked(state_dir, launcher, node_id)
    finally:
        os.close(lock)


def _prepare_locked(state_dir: Path, launcher: Launcher, node_id: str) -> NodeState:
    link = _pick_link()
    host_ip, node_ip = (str(h) for h in list(link.hosts())[:2])
    tunables = {}
    for name in KERNEL_TUNABLES:
        with contextlib.suppress(OSError):
            tunables[name] = (Path("/proc/sys") / name).read_text().strip()
    state = NodeState(
        path=state_dir / STATE_FILE,
        node_id=node_id,
        veth=f"mpn-{node_id}",
        link=str(link),
        host_ip=host_ip,
        node_ip=node_ip,
        cgroup=f"/modelpilot-node-{node_id}",
        tunables=tunables,
        data_dir=f"{DATA_ROOT}/{node_id}",
    )
    Path(state.data_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
    state.save()
    sleep = shutil.which("sleep") or "/bin/sleep"
    launcher.start(
        "node-namespaces",
        ["unshare", "--net", "--mount", "--propagation", "private", "--", sleep, "infinity"],
        exe=sleep,
    )
    holder = launcher.procs["node-namespaces"].pid
    my_net = _ns_inode(os.getpid(), "net")
    deadline = time.monotonic() + 10
    while _ns_inode(holder, "net") in (None, my_net) or _exe(holder) != os.path.realpath(sleep):
        if launcher.procs["node-namespaces"].poll() is not None or time.monotonic() > deadline:
            raise NodeError(
                "unshare --net --mount failed: "
                + (launcher.log_dir / "node-namespaces.log").read_text(errors="replace")
            )
        time.sleep(0.02)
    state.holder_pid = holder
    state.netns = _ns_inode(holder, "net")
    state.mntns = _ns_inode(holder, "mnt")
    state.save()

    prefix = link.prefixlen
    _run(
        [
            "ip",
            "link",
            "add",
            state.veth,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            str(holder),
        ]
    )
    _run(["ip", "addr", "add", f"{host_ip}/{prefix}", "dev", state.veth])
    _run(["ip", "link", "set", state.veth, "up"])
    inside = ["nsenter", f"--target={holder}", "--net", "--mount", "--"]
    scratch = Path(state.data_dir)
    (scratch / "cni-lib").mkdir(parents=True, exist_ok=True)
    for mount_point in ("/var/lib/cni", "/run/containerd"):  # (empty dirs where missing)
        Path(mount_point).mkdir(parents=True, exist_ok=True)
    script = "; ".join(
        [
            "set -e",
            "ip link set lo up",
            f"ip addr add {node_ip}/{prefix} dev eth0",
            "ip link set eth0 up",
            "echo 1 > /proc/sys/net/ipv4/ip_forward",
            "echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables",
            # Paths the kubelet and CNI write outside their configured dirs: private here.
            "mount -t tmpfs -o mode=0755 node-var-log /var/log",
            f"mount --bind {scratch / 'cni-lib'} /var/lib/cni",
            # containerd's shims put their sockets and fifos under /run/containerd, fixed.
            "mount -t tmpfs -o mode=0700 node-run-containerd /run/containerd",
        ]
    )
    _run([*inside, "sh", "-c", script])
    for hierarchy in _hierarchies():
        directory = hierarchy / state.cgroup.lstrip("/")
        directory.mkdir(exist_ok=True)
        if hierarchy.name == "cpuset":  # a cpuset cgroup takes no task before cpus and mems
            for knob in ("cpuset.cpus", "cpuset.mems"):
                (directory / knob).write_text((hierarchy / knob).read_text())
    return state


def _exe(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


# ---- start ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RealNode:
    """A running real node. `import_image` puts an OCI archive into containerd's k8s.io space."""

    name: str
    state_dir: Path
    node_ip: str
    host_ip: str
    containerd_socket: Path
    log_dir: Path
    startup_marks: tuple[tuple[str, float], ...]

    def ctr(self, *args: str, timeout: float = 600.0) -> str:
        return _run(
            ["ctr", f"--address={self.containerd_socket}", "--namespace=k8s.io", *args],
            timeout=timeout,
        )

    def import_image(self, archive: Path, *, name: str | None = None) -> list[str]:
        """Import an OCI (or docker) archive; `name` tags the imported image under that name too.

        Returns the image names containerd now has. Pods should use `imagePullPolicy: Never` or
        `IfNotPresent` (there is no registry).
        """
        out = self.ctr("images", "import", "--no-unpack=false", str(archive))
        refs = [line.split()[1] for line in out.splitlines() if line.startswith("unpacking ")]
        if name:
            if len(refs) != 1:
                raise NodeError(f"{archive} holds {len(refs)} images ({refs}); cannot name one")
            self.ctr("images", "tag", "--force", refs[0], name)
        return self.images()

    def images(self) -> list[str]:
        return sorted(self.ctr("images", "list", "--quiet").split())

    def namespaces(self) -> dict[str, int]:
        state = NodeState.load(self.state_dir / STATE_FILE)
        return {"net": state.netns or 0, "mnt": state.mntns or 0}


def start(
    *,
    state_dir: Path,
    state: NodeState,
    launcher: Launcher,
    binaries: Path,
    server: str,
    pki: dict[str, Path],
    client_kubeconfig: Callable[[str], Path],
    admin_kubectl: Callable[..., Any],
    poll: Callable[[str, Callable[[], bool]], None],
) -> RealNode:
    """Start containerd, the kubelet, kube-proxy and CoreDNS in the prepared namespaces.

    `pki` has "ca" (the cluster CA certificate); `client_kubeconfig(stem)` gives a kubeconfig for
    the client certificates "kubelet", "kube-proxy", "coredns"; `poll(what, check)` waits.
    """
    started = time.monotonic()
    marks: list[tuple[str, float]] = []
    assert state.holder_pid is not None
    holder = state.holder_pid
    base = Path(state.data_dir)
    dirs = {
        name: base / name
        for name in (
            "containerd",
            "containerd/root",
            "containerd/state",
            "cni/net.d",
            "cni/ipam",
            "kubelet",
            "kubelet/root",
            "kubelet/pki",
            "kubelet/pod-logs",
            "kube-proxy",
            "coredns",
        )
    }
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    inside = ["nsenter", f"--target={holder}", "--net", "--mount", "--"]
    socket = dirs["containerd"] / "containerd.sock"

    # containerd: its own root, state and socket; the CRI plugin with runc (cgroupfs) and the CNI
    # bridge. restrict_oom_score_adj: this machine cannot lower oom_score_adj, and runc fails with
    # "can't get final child's PID from pipe" without it. Pod netns files under its state dir.
    containerd_config = dirs["containerd"] / "config.toml"
    cri = '[plugins."io.containerd.grpc.v1.cri"]'
    containerd_config.write_text(
        "\n".join(
            [
                "version = 2",
                f'root = "{dirs["containerd/root"]}"',
                f'state = "{dirs["containerd/state"]}"',
                "disabled_plugins = ["
                + ", ".join(
                    f'"io.containerd.snapshotter.v1.{s}"'
                    for s in ("aufs", "btrfs", "zfs", "devmapper")
                )
                + "]",
                "[grpc]",
                f'  address = "{socket}"',
                "[ttrpc]",
                f'  address = "{dirs["containerd"] / "containerd.ttrpc.sock"}"',
                '[plugins."io.containerd.internal.v1.opt"]',
                f'  path = "{dirs["containerd"] / "opt"}"',
                cri,
                f'  sandbox_image = "{PAUSE_IMAGE}"',
                "  restrict_oom_score_adj = true",
                "  netns_mounts_under_state_dir = true",
                "  disable_apparmor = true",
                '  stream_server_address = "127.0.0.1"',
                f"{cri[:-1]}.containerd]",
                '  snapshotter = "overlayfs"',
                '  default_runtime_name = "runc"',
                f"{cri[:-1]}.containerd.runtimes.runc]",
                '  runtime_type = "io.containerd.runc.v2"',
                f"{cri[:-1]}.containerd.runtimes.runc.options]",
                "  SystemdCgroup = false",
                f'  BinaryName = "{shutil.which("runc") or "/usr/sbin/runc"}"',
                f"{cri[:-1]}.cni]",
                '  bin_dir = "/usr/lib/cni"',
                f'  conf_dir = "{dirs["cni/net.d"]}"',
                "  max_conf_num = 1",
                "",
            ]
        )
    )
    (dirs["cni/net.d"] / "10-modelpilot.conflist").write_text(
        json.dumps(
            {
                "cniVersion": "0.4.0",
                "name": "modelpilot",
                "plugins": [
                    {
                        "type": "bridge",
                        "bridge": "cni0",
                        "isGateway": True,
                        "ipMasq": True,
                        "hairpinMode": True,
                        "ipam": {
                            "type": "host-local",
                            "ranges": [[{"subnet": POD_CIDR}]],
                            "routes": [{"dst": "0.0.0.0/0"}],
                            "dataDir": str(dirs["cni/ipam"]),
                        },
                    }
                ],
            },
            indent=1,
        )
    )
    containerd = shutil.which("containerd") or "/usr/bin/containerd"
    launcher.start(
        "containerd",
        [*inside, containerd, f"--config={containerd_config}", "--log-level=warn"],
        exe=containerd,
    )
    node = RealNode(
        name=NODE_NAME,
        state_dir=state_dir,
        node_ip=state.node_ip,
        host_ip=state.host_ip,
        containerd_socket=socket,
        log_dir=launcher.log_dir,
        startup_marks=(),
    )

    def containerd_up() -> bool:
        return (
            subprocess.run(
                ["ctr", f"--address={socket}", "version"], capture_output=True, check=False
            ).returncode
            == 0
        )

    poll("containerd", containerd_up)
    # The pod sandbox ("pause") image: a busybox shell that waits for a signal.
    pause = busybox_image(
        PAUSE_IMAGE,
        ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait; done"],
    )
    node.import_image(pause)
    marks.append(("containerd + pause image", round(time.monotonic() - started, 2)))

    # kubelet: client certificate from the plane's CA (no bootstrap), webhook authn/z for its API.
    resolv = dirs["kubelet"] / "resolv.conf"
    resolv.write_text(f"nameserver {CLUSTER_DNS}\n")
    kubelet_config = dirs["kubelet"] / "config.yaml"
    kubelet_config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kubelet.config.k8s.io/v1beta1",
                "kind": "KubeletConfiguration",
                "address": state.node_ip,
                "port": 10250,
                "readOnlyPort": 0,
                "healthzBindAddress": "127.0.0.1",
                "healthzPort": 10248,
                "authentication": {
                    "anonymous": {"enabled": False},
                    "webhook": {"enabled": True},
                    "x509": {"clientCAFile": str(pki["ca"])},
                },
                "authorization": {"mode": "Webhook"},
                "cgroupDriver": "cgroupfs",
                "cgroupRoot": state.cgroup,
                "failCgroupV1": False,
                "failSwapOn": False,
                "containerRuntimeEndpoint": f"unix://{socket}",
                "clusterDNS": [CLUSTER_DNS],
                "clusterDomain": CLUSTER_DOMAIN,
                "resolvConf": str(resolv),
                "podLogsDir": str(dirs["kubelet/pod-logs"]),
                "podCIDR": POD_CIDR,
                # A shared disk that other work fills must not evict the test pods.
                "evictionHard": {
                    "memory.available": "100Mi",
                    "nodefs.available": "1%",
                    "imagefs.available": "1%",
                    "nodefs.inodesFree": "1%",
                },
                "imageGCHighThresholdPercent": 100,
                "imageGCLowThresholdPercent": 99,
                "serializeImagePulls": False,
                "rotateCertificates": False,
                "serverTLSBootstrap": False,
                "protectKernelDefaults": False,
                "nodeStatusReportFrequency": "10s",
                "syncFrequency": "10s",
                "fileCheckFrequency": "0s",
                "staticPodPath": "",
            },
            sort_keys=False,
        )
    )
    kubelet = str(binaries / "kubelet")
    launcher.start(
        "kubelet",
        [
            *inside,
            kubelet,
            f"--config={kubelet_config}",
            f"--kubeconfig={client_kubeconfig('kubelet')}",
            f"--root-dir={dirs['kubelet/root']}",
            f"--cert-dir={dirs['kubelet/pki']}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={state.node_ip}",
            "--v=1",
        ],
        exe=kubelet,
    )
    kube_proxy_config = dirs["kube-proxy"] / "config.yaml"
    kube_proxy_config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
                "kind": "KubeProxyConfiguration",
                "clientConnection": {"kubeconfig": str(client_kubeconfig("kube-proxy"))},
                "mode": "iptables",
                "clusterCIDR": POD_CIDR,
                "hostnameOverride": NODE_NAME,
                "bindAddress": "0.0.0.0",
                "healthzBindAddress": "127.0.0.1:10256",
                "metricsBindAddress": "127.0.0.1:10249",
                # Leave the kernel's conntrack limits alone (global, or read-only in a netns).
                "conntrack": {
                    "maxPerCore": 0,
                    "min": 0,
                    "tcpEstablishedTimeout": "0s",
                    "tcpCloseWaitTimeout": "0s",
                },
                "iptables": {"localhostNodePorts": False, "minSyncPeriod": "0s"},
            },
            sort_keys=False,
        )
    )
    kube_proxy = str(binaries / "kube-proxy")
    launcher.start(
        "kube-proxy",
        [*inside, kube_proxy, f"--config={kube_proxy_config}", "--v=1"],
        exe=kube_proxy,
    )

    # CoreDNS as a node process (not a pod): no image to build, and DNS is up before any pod.
    admin_kubectl(
        "apply",
        "-f",
        "-",
        input=yaml.safe_dump_all(
            [
                *_dns_objects(state.node_ip),
                _api_endpoints(state.host_ip, int(server.rsplit(":", 1)[1])),
            ]
        ),
    )
    corefile = dirs["coredns"] / "Corefile"
    corefile.write_text(
        "\n".join(
            [
                ".:53 {",
                "    errors",
                "    health 127.0.0.1:8080",
                "    ready 127.0.0.1:8181",
                f"    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{",
                f"        kubeconfig {client_kubeconfig('coredns')} modelpilot-local",
                "        pods insecure",
                "        ttl 5",
                "    }",
                "    cache 5",
                "}",
                "",
            ]
        )
    )
    coredns = str(binaries / "coredns")
    launcher.start("coredns", [*inside, coredns, "-conf", str(corefile)], exe=coredns)

    def node_ready() -> bool:
        out = admin_kubectl(
            "get",
            "node",
            NODE_NAME,
            '-o=jsonpath={.status.conditions[?(@.type=="Ready")].status}',
            check=False,
        )
        return bool(out.returncode == 0 and out.stdout.strip() == "True")

    def dns_ready() -> bool:
        return _http_ok_inside(inside, "http://127.0.0.1:8181/ready")

    poll(f"node {NODE_NAME} Ready (kubelet)", node_ready)
    marks.append(("kubelet Ready", round(time.monotonic() - started, 2)))
    poll("CoreDNS /ready", dns_ready)
    marks.append(("CoreDNS ready", round(time.monotonic() - started, 2)))
    return RealNode(
        name=NODE_NAME,
        state_dir=state_dir,
        node_ip=state.node_ip,
        host_ip=state.host_ip,
        containerd_socket=socket,
        log_dir=launcher.log_dir,
        startup_marks=tuple(marks),
    )


def _http_ok_inside(inside: list[str], url: str) -> bool:
    code = (
        "import sys, urllib.request\n"
        f"sys.exit(0 if urllib.request.urlopen({url!r}, timeout=2).status == 200 else 1)\n"
    )
    return (
        subprocess.run(
            [*inside, sys.executable, "-c", code], capture_output=True, check=False, timeout=10
        ).returncode
        == 0
    )


def _api_endpoints(host_ip: str, port: int) -> dict[str, Any]:
    """The `kubernetes` Service's endpoints (the API server runs without an endpoint reconciler)."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {
                "kubernetes.io/service-name": "kubernetes",
                "endpointslice.kubernetes.io/managed-by": "modelpilot.local-node",
            },
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [host_ip], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    }


def _dns_objects(node_ip: str) -> list[dict[str, Any]]:
    """The kube-dns Service (10.96.0.10) pointing at CoreDNS on the node, and its RBAC."""
    labels = {"k8s-app": "kube-dns", "app.kubernetes.io/managed-by": "modelpilot-node"}
    ports = [("dns", "UDP"), ("dns-tcp", "TCP")]
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "modelpilot:coredns"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "modelpilot:coredns"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "modelpilot:coredns",
            },
            "subjects": [
                {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "User",
                    "name": "modelpilot:coredns",
                }
            ],
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
            "spec": {
                "clusterIP": CLUSTER_DNS,
                "ports": [{"name": n, "port": 53, "protocol": p} for n, p in ports],
            },
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "kube-dns-node",
                "namespace": "kube-system",
                "labels": {
                    "kubernetes.io/service-name": "kube-dns",
                    "endpointslice.kubernetes.io/managed-by": "modelpilot.local-node",
                },
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [node_ip], "conditions": {"ready": True}}],
            "ports": [{"name": n, "port": 53, "protocol": p} for n, p in ports],
        },
    ]


# ---- teardown -----------------------------------------------------------------------------------


def cleanup(state_dir: Path) -> list[str]:
    """Remove whatever the node left once its recorded processes were stopped; idempotent.

    Kills the pods' processes (by cgroup) and anything still in the node's namespaces
    (containerd's shims, an orphan), removes the cgroups, deletes the host end of the veth if it
    outlived the namespace, restores the kernel tunables. Returns what could not be removed.
    """
    path = state_dir / STATE_FILE
    if not path.is_file():
        return []
    state = NodeState.load(path)
    problems: list[str] = []
    inodes = {k: v for k, v in (("net", state.netns), ("mnt", state.mntns)) if v}

    def leftovers() -> set[int]:
        return _cgroup_pids(state.cgroup) | (_pids_in_namespaces(inodes) if inodes else set())

    alive = _kill_until_gone(leftovers)
    if alive:
        problems.append(f"processes still alive: {sorted(alive)}")
    problems += [f"cgroup left: {c}" for c in _remove_cgroups(state.cgroup)]
    if subprocess.run(["ip", "link", "show", state.veth], capture_output=True).returncode == 0:
        # The namespace is gone once its last process is; its veth end takes ours with it,
        # a moment later. Only a live reference (a stray process) would keep it.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if subprocess.run(["ip", "link", "show", state.veth], capture_output=True).returncode:
                break
            time.sleep(0.1)
        else:
            subprocess.run(["ip", "link", "del", state.veth], capture_output=True)
    for name, value in state.tunables.items():
        try:
            target = Path("/proc/sys") / name
            if target.read_text().strip() != value:
                target.write_text(value)
        except OSError as exc:
            problems.append(f"could not restore {name}={value}: {exc}")
    if state.data_dir.startswith(f"{DATA_ROOT}/"):
        shutil.rmtree(state.data_dir, ignore_errors=True)
        # (DATA_ROOT and its .link.lock stay: removing a lock file others may hold is a race.)
    if not problems:
        path.unlink(missing_ok=True)
    return problems


# ---- command line --------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m modelpilot.testing.node",
        description="Work with the real node of a plane started by `controlplane up --node real`.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import-image", help="import an OCI archive into the node's containerd")
    imp.add_argument("archive", type=Path)
    imp.add_argument("--dir", type=Path, default=Path(".cluster"))
    imp.add_argument("--name", default=None, help="also tag the image with this name")
    sub.add_parser("binaries", help="build (or find) kubelet, kube-proxy, coredns; print the dir")
    args = parser.parse_args(argv)
    try:
        if args.command == "binaries":
            print(ensure_binaries())
            return 0
        state_file = args.dir.resolve() / STATE_FILE
        socket = (
            Path(NodeState.load(state_file).data_dir) / "containerd" / "containerd.sock"
            if state_file.is_file()
            else None
        )
        if socket is None or not socket.exists():
            print(f"error: no real node running under {args.dir}", file=sys.stderr)
            return 1
        node = RealNode(
            name=NODE_NAME,
            state_dir=args.dir.resolve(),
            node_ip="",
            host_ip="",
            containerd_socket=socket,
            log_dir=args.dir.resolve() / "logs",
            startup_marks=(),
        )
        for image in node.import_image(args.archive, name=args.name):
            print(image)
        return 0
    except NodeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
