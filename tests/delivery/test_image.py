"""The Dockerfile and the images built from it.

First the Dockerfile read as text (fast, no engine): every target's entrypoint is a command or
module the package really has, the runtime runs as a numeric non-root user, the image names match
the operator's default images and the chart's values, and .dockerignore keeps the build context to
what the Dockerfile copies.

Each image installs only its own distributions (issue 14, item 5: one per service, as MLServer
ships its runtimes): the wheels it installs carry its entrypoint, each service's wheel carries that
service alone, no wheel carries the dev-only harnesses, and in the built images the router holds
the core, the shared server frame and the router (no model-server or drift-job code, no MLflow,
pandas, scipy or scikit-learn), the model server the core, the frame and the model server (no
router or drift-job code, no Kubernetes client, kopf or training tooling).

Then the five images themselves (marker `images`; `make images` builds them with podman from a
Debian-package base, hack/images.sh): each runs as uid 10001 under a read-only root with only /tmp
writable, the way the chart and the operator run them, and each entrypoint does its job: `mlflow
server` from the general image, a registered model served by the model-server image, predictions
and rewards through the router image, a drift run of the drift image against that server's window.
Containers share the host's network namespace on loopback ports (no bridge or NAT needed).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import shlex
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest
import yaml

from modelpilot.cli import main as cli_main
from modelpilot.operator import settings as operator_settings
from modelpilot.testing import images as images_mod
from modelpilot.testing import ports

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "Dockerfile").read_text()
TARGETS = ("modelpilot", "operator", "model-server", "router", "drift")


def _stages() -> dict[str, list[str]]:
    """Stage name -> its instruction lines (continuations joined)."""
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    logical = DOCKERFILE.replace("\\\n", " ").splitlines()
    for line in logical:
        stripped = line.strip()
        if stripped.upper().startswith("FROM "):
            parts = stripped.split()
            name = parts[3] if len(parts) >= 4 and parts[2].upper() == "AS" else parts[1]
            current = stages.setdefault(name, [])
        elif stripped and not stripped.startswith("#"):
            current.append(stripped)
    return stages


def _entrypoint(stage: str) -> list[str]:
    lines = [line for line in _stages()[stage] if line.upper().startswith("ENTRYPOINT ")]
    assert len(lines) == 1, f"stage {stage} should set one ENTRYPOINT"
    argv: list[str] = json.loads(lines[0].split(" ", 1)[1])
    return argv


def test_dockerfile_has_every_target_and_the_general_image_is_the_default() -> None:
    stages = list(_stages())
    assert set(TARGETS) <= set(stages)
    assert stages[-1] == "modelpilot", "the last stage is what `docker build .` builds"


def test_every_entrypoint_runs_from_the_installed_package() -> None:
    for target in TARGETS:
        argv = _entrypoint(target)
        if argv[:2] == ["python", "-m"]:
            assert importlib.util.find_spec(f"{argv[2]}.__main__") is not None, target
            continue
        assert argv[0] == "modelpilot", target
        if len(argv) > 1:
            assert argv[1] in {*cli_main.COMMANDS, *cli_main.PLUGIN_GROUPS}, target
        # The console script itself answers --help for that command (exit 0, no traceback).
        proc = subprocess.run(
            [sys.executable, "-m", "modelpilot.cli.main", *argv[1:], "--help"],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert proc.returncode == 0, f"{target}: {shlex.join(argv)} --help: {proc.stderr}"


def test_runtime_runs_as_a_numeric_non_root_user_with_a_writable_tmp_only() -> None:
    runtime = _stages()["runtime"]
    users = [line.split()[1] for line in runtime if line.upper().startswith("USER ")]
    assert users == ["10001:10001"]
    env = " ".join(line for line in runtime if line.upper().startswith("ENV "))
    assert "HOME=/tmp" in env  # the chart mounts /tmp as an emptyDir under a read-only root
    for target in TARGETS:
        # A target adds its own environment to the shared runtime, nothing else.
        lines = _stages()[target]
        assert not any(line.upper().startswith("RUN ") for line in lines), target
        copies = [line for line in lines if line.upper().startswith("COPY ")]
        assert copies == [f"COPY --from=venv-{target} /opt/modelpilot /opt/modelpilot"], target


def test_image_names_match_the_operator_defaults_and_the_chart_values() -> None:
    defaults = operator_settings.OperatorSettings()
    values = yaml.safe_load((REPO / "charts" / "modelpilot" / "values.yaml").read_text())
    chart_version = yaml.safe_load((REPO / "charts" / "modelpilot" / "Chart.yaml").read_text())
    tag = chart_version["appVersion"]
    expected = {
        "modelServer": f"ghcr.io/modelpilot/model-server:{tag}",
        "router": f"ghcr.io/modelpilot/router:{tag}",
        "drift": f"ghcr.io/modelpilot/drift:{tag}",
    }
    assert defaults.model_server_image == expected["modelServer"]
    assert defaults.router_image == expected["router"]
    assert defaults.drift_image == expected["drift"]
    images = values["operator"]["workloadImages"]
    assert {k: images[k] for k in expected} == expected
    assert values["operator"]["image"]["repository"] == "ghcr.io/modelpilot/operator"
    assert values["mlflow"]["image"]["repository"] == "ghcr.io/modelpilot/modelpilot"


def test_dockerignore_keeps_the_context_to_what_the_dockerfile_copies() -> None:
    ignored = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    copied = {
        part.rstrip("/").removeprefix("./")
        for line in DOCKERFILE.splitlines()
        if line.startswith("COPY ") and "--from" not in line
        for part in line.split()[1:-1]
    }
    assert copied == {
        "pyproject.toml",
        "README.md",
        "src",
        "operator",
        "services",
        "operator/pyproject.toml",
        *(f"services/{service}/pyproject.toml" for service in SERVICES),
        "hack/images/requirements.py",
    }
    assert not copied & ignored
    assert {".git", ".venv", "tests", "charts", "dev"} <= ignored


SERVICES = ("httpserver", "router", "modelserver", "driftjob")
"""The distributions under services/ (services/<name>/pyproject.toml, package modelpilot.<name>)."""

IMAGE_DISTRIBUTIONS = {
    "router": ("modelpilot", "modelpilot_httpserver", "modelpilot_router"),
    "model-server": ("modelpilot", "modelpilot_httpserver", "modelpilot_modelserver"),
    "drift": ("modelpilot", "modelpilot_driftjob"),
    "operator": ("modelpilot", "modelpilot_operator"),
    "modelpilot": (
        "modelpilot",
        "modelpilot_operator",
        *(f"modelpilot_{service}" for service in SERVICES),
    ),
}
"""The product wheels each target installs (Dockerfile, its venv-<target> stage)."""


def test_each_image_installs_the_wheels_that_carry_its_entrypoint_and_no_dev_code(
    tmp_path: Path,
) -> None:
    # The wheels stage runs `pip wheel --no-deps . ./operator ./services/...`: the same wheels.
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path)),
            *(str(REPO), str(REPO / "operator")),
            *(str(REPO / "services" / service) for service in SERVICES),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    names: dict[str, set[str]] = {}
    entry_points: dict[str, str] = {}
    for wheel in tmp_path.glob("*.whl"):
        with zipfile.ZipFile(wheel) as archive:
            dist = wheel.name.split("-")[0]
            names[dist] = set(archive.namelist())
            # The shared frame (modelpilot-httpserver) adds no command, so no entry_points.txt.
            listing = [n for n in names[dist] if n.endswith(".dist-info/entry_points.txt")]
            entry_points[dist] = "".join(archive.read(n).decode() for n in listing)
    assert set(names) == set(IMAGE_DISTRIBUTIONS["modelpilot"])
    # Each service's wheel is that service alone (its package and its metadata).
    for service in SERVICES:
        files = [n.split("/") for n in names[f"modelpilot_{service}"]]
        packages = {f"{top}/{sub}" for top, sub, *_ in files if not top.endswith(".dist-info")}
        assert packages == {f"modelpilot/{service}"}, packages
    assert "modelpilot = modelpilot.cli.main:main" in entry_points["modelpilot"]
    for target in TARGETS:
        installed = IMAGE_DISTRIBUTIONS[target]
        files = set().union(*(names[d] for d in installed))
        argv = _entrypoint(target)
        if argv[:2] == ["python", "-m"]:
            assert argv[2].replace(".", "/") + "/__main__.py" in files, target
        elif len(argv) == 1:
            assert "modelpilot/cli/main.py" in files, target
        elif argv[1] in cli_main.COMMANDS:
            module = cli_main.COMMANDS[argv[1]][0]
            assert module.replace(".", "/") + ".py" in files, target
            if len(argv) > 2:  # a command another distribution adds (`drift run`)
                assert any(f"{argv[1]}.{argv[2]} =" in entry_points[d] for d in installed), target
        else:  # a group made only of another distribution's commands (`operator run`)
            assert any(f"{argv[1]}.{argv[2]} =" in entry_points[d] for d in installed), target
    every = set().union(*names.values())
    # The harnesses and the demo are modelpilot-dev's, in no product wheel.
    assert not {n for n in every if n.startswith(("modelpilot/testing/", "modelpilot/demo/"))}
    # One namespace package, no top-level `operator` to shadow the standard library's.
    assert {n.split("/")[0] for n in every if ".dist-info/" not in n} == {"modelpilot"}
    assert "modelpilot/__init__.py" not in every


# ---- the built images, run with podman ------------------------------------------------------


@pytest.fixture(scope="module")
def built() -> images_mod.Images:
    # A cold build (Debian base + every dependency) takes ~10 min; `make test` builds first.
    return images_mod.ensure()


@contextlib.contextmanager
def container(
    image: str,
    *args: str,
    env: dict[str, str] | None = None,
    entrypoint: list[str] | None = None,
    volumes: Sequence[str] = (),
) -> Iterator[str]:
    """A detached container as the chart runs one: read-only root, only /tmp writable (a tmpfs
    standing in for the emptyDir), all capabilities dropped, no privilege escalation, the image's
    own user. It shares the host's network (loopback ports). Removed on exit."""
    name = f"mp-test-{uuid.uuid4().hex[:10]}"
    argv = [
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "host",
        "--read-only",
        "--read-only-tmpfs=false",
        "--tmpfs",
        "/tmp:rw,size=512m,mode=1777",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
    ]
    for key, value in (env or {}).items():
        argv += ["-e", f"{key}={value}"]
    for volume in volumes:
        argv += ["-v", volume]
    if entrypoint is not None:
        argv += ["--entrypoint", json.dumps(entrypoint)]
    images_mod.podman(*argv, image, *args)
    try:
        yield name
    finally:
        images_mod.podman("rm", "-f", "-t", "5", name, check=False)


def logs(name: str) -> str:
    proc = images_mod.podman("logs", "--tail", "60", name, check=False)
    return proc.stdout + proc.stderr


def wait_http(url: str, name: str, *, timeout: float = 180.0) -> None:
    """Until GET `url` answers 200; fail with the container's log if it exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = images_mod.podman("inspect", "--format", "{{.State.Running}}", name).stdout
        if state.strip() != "true":
            raise AssertionError(f"container {name} exited:\n{logs(name)}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)  # poll interval of a deadline loop
    raise AssertionError(f"{url} not ready after {timeout:.0f}s:\n{logs(name)}")


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.images
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_each_image_runs_as_uid_10001_with_only_tmp_writable(
    built: images_mod.Images, target: str
) -> None:
    script = (
        "id -u; id -g; echo HOME=$HOME; "
        "if touch /opt/modelpilot/x 2>/dev/null; then echo root-writable; "
        "else echo root-read-only; fi; "
        "touch /tmp/x && echo tmp-writable"
    )
    proc = images_mod.podman(
        "run",
        "--rm",
        "--read-only",
        "--read-only-tmpfs=false",
        "--tmpfs",
        "/tmp:rw,size=16m,mode=1777",
        "--cap-drop",
        "ALL",
        "--entrypoint",
        '["/bin/sh", "-c"]',
        built.ref(target),
        script,
    )
    assert proc.stdout.split() == [
        "10001",
        "10001",
        "HOME=/tmp",
        "root-read-only",
        "tmp-writable",
    ]
    config = json.loads(images_mod.podman("image", "inspect", built.ref(target)).stdout)[0]
    assert config["Config"]["User"] == "10001:10001"
    assert config["Config"]["Entrypoint"] == _entrypoint(target)


@pytest.fixture(scope="module")
def mlflow_in_image(built: images_mod.Images) -> Iterator[str]:
    """`mlflow server` from the general image, as charts/modelpilot runs it (state under /tmp)."""
    port = ports.free_port()
    with container(
        built.ref("modelpilot"),
        "server",
        "--host=127.0.0.1",
        f"--port={port}",
        "--backend-store-uri=sqlite:////tmp/mlflow.db",
        "--serve-artifacts",
        "--artifacts-destination=/tmp/artifacts",
        entrypoint=["mlflow"],
    ) as name:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health", name)
        yield url


@pytest.fixture(scope="module")
def registered(mlflow_in_image: str) -> tuple[str, str]:
    """An iris model with its reference profile, logged from the host into that server."""
    import mlflow
    import mlflow.models
    import mlflow.sklearn
    import numpy as np
    import sklearn.datasets
    import sklearn.linear_model

    from modelpilot.registry import client as registry_client
    from modelpilot.registry import profiles
    from modelpilot.stats import profile as profile_mod

    iris = sklearn.datasets.load_iris(as_frame=True)
    x = iris.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    model = sklearn.linear_model.LogisticRegression(max_iter=500).fit(x, iris.target)
    mlflow.set_tracking_uri(mlflow_in_image)
    mlflow.set_experiment("image-tests")
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(
            model,
            name="model",
            signature=mlflow.models.infer_signature(x, model.predict(x)),
            input_example=x.head(2),
        )
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "iris-image").version
    profile = profile_mod.build_profile(
        {c: x[c].to_numpy() for c in x.columns}, rng=np.random.default_rng(0)
    )
    profiles.log_reference_profile(
        registry_client.make_client(mlflow_in_image),
        name="iris-image",
        version=str(version),
        profile=profile,
    )
    return "iris-image", str(version)


@pytest.fixture(scope="module")
def served_admin_port() -> int:
    """The model server's admin port (/drift/window, /metrics; issue 15): host network, not 8082."""
    return ports.free_port()


@pytest.fixture(scope="module")
def served(
    built: images_mod.Images,
    mlflow_in_image: str,
    registered: tuple[str, str],
    served_admin_port: int,
) -> Iterator[str]:
    """The model-server image with the env the operator writes (builders/workloads.py)."""
    name, version = registered
    port = ports.free_port()
    env = {
        "MODELPILOT_SERVER_MODEL_URI": f"models:/{name}/{version}",
        "MODELPILOT_SERVER_TRACKING_URI": mlflow_in_image,
        "MODELPILOT_SERVER_DEPLOYMENT": "iris",
        "MODELPILOT_SERVER_VARIANT": "stable",
        "MODELPILOT_SERVER_HOST": "127.0.0.1",
        "MODELPILOT_SERVER_PORT": str(port),
        "MODELPILOT_SERVER_ADMIN_PORT": str(served_admin_port),
    }
    with container(built.ref("model-server"), env=env) as cname:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/v2/health/ready", cname)
        yield url


IRIS_ROWS = [
    {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2},
    {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3},
]


@pytest.mark.images
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_model_server_image_loads_the_registered_model_under_a_read_only_root(
    served: str,
) -> None:
    response = httpx.post(f"{served}/predict", json={"instances": IRIS_ROWS}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == [0, 2]


@pytest.mark.images
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_router_image_forwards_to_the_model_server_and_takes_rewards(
    built: images_mod.Images, served: str, tmp_path: Path
) -> None:
    routes = tmp_path / "routes.json"
    routes.write_text(
        json.dumps(
            {
                "deployment": "iris",
                "stable": "stable",
                "policy": {"type": "fixed"},
                "variants": [{"name": "stable", "url": served, "weight": 100, "modelVersion": "1"}],
            }
        )
    )
    routes.chmod(0o644)
    port, admin_port = ports.free_port(), ports.free_port()
    env = {
        "MODELPILOT_ROUTER_DEPLOYMENT": "iris",
        "MODELPILOT_ROUTER_ROUTES_FILE": "/etc/modelpilot/routes.json",
        "MODELPILOT_ROUTER_HOST": "127.0.0.1",
        "MODELPILOT_ROUTER_PORT": str(port),
        "MODELPILOT_ROUTER_ADMIN_PORT": str(admin_port),
    }
    with container(
        built.ref("router"), env=env, volumes=[f"{routes}:/etc/modelpilot/routes.json:ro"]
    ) as name:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/readyz", name)
        response = httpx.post(f"{url}/predict", json={"instances": IRIS_ROWS}, timeout=30)
        assert response.status_code == 200, response.text
        assert response.headers["X-Modelpilot-Variant"] == "stable"
        assert response.json()["predictions"] == [0, 2]
        feedback = httpx.post(
            f"{url}/feedback",
            json={"request_id": response.headers["X-Request-Id"], "reward": 1},
            timeout=30,
        )
        assert feedback.status_code in (200, 202), feedback.text
        metrics = httpx.get(f"http://127.0.0.1:{admin_port}/metrics", timeout=30).text
        assert 'modelpilot_router_requests_total{deployment="iris",variant="stable"}' in metrics


@pytest.mark.images
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_drift_image_computes_drift_from_the_model_servers_window(
    built: images_mod.Images,
    served: str,
    served_admin_port: int,
    mlflow_in_image: str,
    registered: tuple[str, str],
) -> None:
    # Shifted inputs (every feature +3 cm) fill the server's window: drift must show.
    shifted = [{k: v + 3.0 for k, v in row.items()} for row in IRIS_ROWS * 50]
    response = httpx.post(f"{served}/predict", json={"instances": shifted}, timeout=30)
    assert response.status_code == 200, response.text
    name, version = registered
    proc = images_mod.podman(
        "run",
        "--rm",
        "--network",
        "host",
        "--read-only",
        "--read-only-tmpfs=false",
        "--tmpfs",
        "/tmp:rw,size=64m,mode=1777",
        "--cap-drop",
        "ALL",
        "-e",
        f"MLFLOW_TRACKING_URI={mlflow_in_image}",
        built.ref("drift"),
        "--deployment",
        "iris",
        "--window-url",  # the window is served on the admin port only (issue 15)
        f"http://127.0.0.1:{served_admin_port}",
        "--model",
        f"{name}/{version}",
        "--no-status",
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["rows"] >= len(shifted), summary
    assert summary["maxPsi"] > 0.2, summary  # the alert threshold: significant drift
    assert set(summary["driftedFeatures"]) == set(IRIS_ROWS[0]), summary


def _importable(image: str, modules: Sequence[str]) -> list[str]:
    """Which of `modules` the image's Python can find."""
    script = (
        "import importlib.util, sys; "
        "print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m)))"
    )
    proc = images_mod.podman(
        "run", "--rm", "--entrypoint", '["python", "-c"]', image, script, *modules
    )
    return proc.stdout.split()


HEAVY = ("mlflow", "sklearn", "optuna", "matplotlib", "pandas", "pyarrow", "scipy", "kopf")


@pytest.mark.images
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_the_router_image_holds_none_of_the_ml_stack_and_is_the_smallest(
    built: images_mod.Images,
) -> None:
    assert _importable(built.ref("router"), [*HEAVY, "modelpilot.router.app"]) == [
        "modelpilot.router.app"
    ]
    sizes = {
        target: int(
            images_mod.podman("image", "inspect", "--format", "{{.Size}}", built.ref(target)).stdout
        )
        for target in TARGETS
    }
    assert sizes["router"] == min(sizes.values()), sizes
    assert sizes["router"] < sizes["modelpilot"] / 2, sizes


@pytest.mark.images
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_the_model_server_image_holds_no_kubernetes_client_or_training_tooling(
    built: images_mod.Images,
) -> None:
    found = _importable(
        built.ref("model-server"),
        ["kubernetes", "kopf", "redis", "optuna", "matplotlib", "mlflow.pyfunc", "sklearn"],
    )
    assert found == ["mlflow.pyfunc", "sklearn"]


IMAGE_PACKAGES = {
    "router": {"httpserver", "router"},
    "model-server": {"httpserver", "modelserver"},
    "drift": {"driftjob"},
    "operator": {"operator"},
    "modelpilot": {"operator", *SERVICES},
}
"""What each image holds of modelpilot beyond the core (src/modelpilot): its own package(s)."""


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.images
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_each_image_holds_the_core_and_its_own_packages_and_no_other_services_code(
    built: images_mod.Images, target: str
) -> None:
    # What is installed, read in the image: the modelpilot distributions, and every entry of the
    # namespace package `modelpilot` in site-packages (one directory: the wheels' union).
    script = (
        "import importlib.metadata as m, os, modelpilot; "
        "print(' '.join(sorted(d.metadata['Name'] for d in m.distributions() "
        "if d.metadata['Name'].startswith('modelpilot')))); "
        "print(' '.join(sorted(e for p in modelpilot.__path__ for e in os.listdir(p) "
        "if e != '__pycache__')))"
    )
    proc = images_mod.podman(
        "run", "--rm", "--entrypoint", '["python", "-c"]', built.ref(target), script
    )
    distributions, entries = proc.stdout.splitlines()
    core = {p.name for p in (REPO / "src" / "modelpilot").iterdir() if p.name != "__pycache__"}

    assert distributions.split() == sorted(d.replace("_", "-") for d in IMAGE_DISTRIBUTIONS[target])
    assert set(entries.split()) == core | IMAGE_PACKAGES[target]


@pytest.mark.parametrize(
    ("target", "command", "distribution"),
    [
        ("router", ["operator", "run"], "modelpilot-operator"),
        ("router", ["serve", "model"], "modelpilot-modelserver"),
        ("router", ["drift", "run"], "modelpilot-driftjob"),
        ("model-server", ["serve", "router"], "modelpilot-router"),
    ],
)
@pytest.mark.images
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_a_command_of_a_distribution_the_image_lacks_names_the_distribution(
    built: images_mod.Images, target: str, command: list[str], distribution: str
) -> None:
    proc = images_mod.podman(
        "run",
        "--rm",
        "--entrypoint",
        '["modelpilot"]',
        built.ref(target),
        *command,
        check=False,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"pip install {distribution}" in proc.stderr
    assert "Traceback" not in proc.stderr
