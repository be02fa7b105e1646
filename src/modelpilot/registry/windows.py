"""Drift windows persisted in MLflow: artifacts of the served model version's run.

The model servers flush their drift window here (periodically and at shutdown), and the drift job
reads the flushes of processes that are gone (a restart, a rollout), so their samples still count.
Layout, one file per model-server process (its epoch), rewritten on each flush:

    modelpilot-drift-windows/<namespace>/<deployment>/<flushed_at>-<epoch>-<sequence>-<pod>.json

Design decision: everything a reader needs to choose and prune is in the file *name* (the flush
time, the process's epoch and sequence), so listing the directory is enough; the store stays bounded
because each process deletes its previous file after writing the next, and every writer prunes the
files older than the window's horizon (old flushes would have rotated out of a live window too).
The artifacts live on the version's run because a window is counted over that version's reference
profile, and the run is where that profile already is (`profiles`).
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow.tracking
from mlflow.store.artifact import artifact_repository_registry

from modelpilot import errors
from modelpilot.registry import client as registry_client

ROOT = "modelpilot-drift-windows"
_NAME = re.compile(
    r"^(?P<at>\d{1,16})-(?P<epoch>[A-Za-z0-9_]{1,64})-(?P<seq>\d{1,12})-(?P<pod>.+)\.json$"
)
_POD = re.compile(r"[^a-z0-9.-]")


@dataclass(frozen=True)
class WindowFile:
    """One persisted flush, as its name describes it."""

    path: str  # artifact path inside the run
    flushed_at: int  # unix seconds
    epoch: str
    sequence: int
    pod: str
    size: int | None


def directory(*, namespace: str, deployment: str) -> str:
    return f"{ROOT}/{namespace}/{deployment}"


def file_name(*, flushed_at: float, epoch: str, sequence: int, pod: str) -> str:
    safe_pod = _POD.sub("-", pod.lower())[:200] or "pod"
    return f"{int(flushed_at):012d}-{epoch}-{sequence:08d}-{safe_pod}.json"


def parse_name(path: str) -> WindowFile | None:
    """The flush a file name describes, or None for a name this module did not write."""
    match = _NAME.match(path.rsplit("/", 1)[-1])
    if match is None:
        return None
    return WindowFile(
        path=path,
        flushed_at=int(match["at"]),
        epoch=match["epoch"],
        sequence=int(match["seq"]),
        pod=match["pod"],
        size=None,
    )


def run_id_of(client: mlflow.tracking.MlflowClient, *, name: str, version: str) -> str:
    with registry_client.mapped_errors(f"model {name} version {version}"):
        mv = client.get_model_version(name, str(version))
    if not mv.run_id:
        raise errors.InputError(f"model {name} version {version}: has no run to keep windows on")
    return str(mv.run_id)


def write(client: mlflow.tracking.MlflowClient, *, run_id: str, path: str, text: str) -> None:
    """Store `text` as the artifact `path` (a full path under ROOT) of the run."""
    with registry_client.mapped_errors(f"run {run_id}"):
        client.log_text(run_id, text, path)


def list_files(
    client: mlflow.tracking.MlflowClient, *, run_id: str, namespace: str, deployment: str
) -> list[WindowFile]:
    """The persisted flushes of a deployment on the run, oldest first (foreign names ignored)."""
    with registry_client.mapped_errors(f"run {run_id}"):
        infos = client.list_artifacts(run_id, directory(namespace=namespace, deployment=deployment))
    out = []
    for info in infos:
        if info.is_dir:
            continue
        parsed = parse_name(info.path)
        if parsed is not None:
            out.append(
                WindowFile(
                    path=parsed.path,
                    flushed_at=parsed.flushed_at,
                    epoch=parsed.epoch,
                    sequence=parsed.sequence,
                    pod=parsed.pod,
                    size=info.file_size,
                )
            )
    return sorted(out, key=lambda f: (f.flushed_at, f.sequence))


def read(client: mlflow.tracking.MlflowClient, *, run_id: str, path: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp, registry_client.mapped_errors(f"run {run_id}"):
        local = client.download_artifacts(run_id, path, tmp)
        return Path(local).read_bytes()


def delete(client: mlflow.tracking.MlflowClient, *, run_id: str, path: str) -> None:
    """Delete one artifact through the run's artifact repository (MLflow's client has no call)."""
    with registry_client.mapped_errors(f"run {run_id}"):
        run = client.get_run(run_id)
        repo = artifact_repository_registry.get_artifact_repository(run.info.artifact_uri)
        repo.delete_artifacts(path)  # type: ignore[no-untyped-call]
