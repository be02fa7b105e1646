"""The ModelDeployment controller: thin kopf handlers around resolve -> build -> apply -> status.

    create / update (spec)       -> full reconcile: registry.resolve (alias -> version),
                                    builders.desired.build_desired (pure), apply what differs from
                                    the watch cache, prune what is owned but not desired, status
    resume (operator start)      -> check (below), or a full reconcile if the spec is unobserved
    owned object changed/deleted -> check of its ModelDeployment, debounced (a hand edit is
                                    repaired, readiness follows the Deployments)
    every resync interval        -> each alias re-resolved once per (registry, model, alias), then
                                    a check of every ModelDeployment; a full reconcile only where
                                    the alias moved, the spec is unobserved or it is Degraded

    check = build the desired objects from the status (the model already resolved) and compare them
    with the watch cache (`owned`): no API request at all when nothing differs.

Design decision: reconciliation is driven by watches, not by listing. kopf indexes hold the
ModelDeployments, the Experiments (by deploymentRef) and every object a ModelDeployment controls
(by owner), fed by one watch per kind; kopf fills them before any handler runs. The periodic check
reads these indexes, so at rest the operator makes no API request and its CPU does not grow with the
number of objects beyond the watch events. There is no per-object kopf timer, hence no finalizer:
the owned objects go with their ModelDeployment by ownerReference garbage collection, whether or
not the operator runs. One lock per object keeps the handlers and the check from reconciling the
same ModelDeployment at once. `resync_mode="relist"` keeps the former behaviour (a kopf timer per
object that lists eight kinds) as the baseline of bench/operator_idle.py.

The routes ConfigMap has one writer function (`builders.routes`): this controller builds it from its
spec plus the variants and weights in the status of a Running Experiment that references the
deployment; the Experiment controller calls the same builder with the same inputs.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import kopf

from modelpilot import errors
from modelpilot.api import common, constants
from modelpilot.kube import apply
from modelpilot.operator import changereason, conditions, mdstatus, owned, readiness
from modelpilot.operator import metrics as metrics_mod
from modelpilot.operator import settings as settings_mod
from modelpilot.operator.builders import desired, meta, routes
from modelpilot.operator.handlers import failures
from modelpilot.registry import client, resolve

Logger = logging.Logger | logging.LoggerAdapter[Any]
_LOG = logging.getLogger(__name__)
KIND = "ModelDeployment"
PLURAL = "modeldeployments"
EXPECTED_DEPLOYMENTS = 2  # the stable model server and the router
CHANGE_REASON = constants.ANNOTATION_CHANGE_REASON
DEBOUNCE_SECONDS = 0.3
"""How long the check waits after an owned object's event, so that a burst (a rollout's status
updates, our own applies) is checked once."""
RESOLVE_TTL_SECONDS = 2.0
"""How long a registry lookup answers other reconciles of the same reference."""
CHECK_CHUNKS = 8
"""Threads a periodic check is spread over (only repairs and readiness patches do I/O)."""

# kopf index ids (also the kwargs names kopf passes the indexes under).
MD_INDEX = "modelpilot_md_index"
EXPERIMENT_INDEX = "modelpilot_experiment_index"
OWNED_INDEX_PREFIX = "modelpilot_owned_"

ObjectKey = tuple[str, str]  # (namespace, name)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _workload_selector(md_name: str) -> str:
    return f"{meta.LABEL_DEPLOYMENT}={md_name},!{meta.LABEL_EXPERIMENT}"


class _ObjectLogger(logging.LoggerAdapter[logging.Logger]):
    """Prefixes each line with `[namespace/name]`, as kopf's own per-object logger does."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return f"[{(self.extra or {}).get('object')}] {msg}", kwargs


def object_logger(namespace: str, name: str) -> Logger:
    return _ObjectLogger(_LOG, {"object": f"{namespace}/{name}"})


@dataclass
class Snapshot:
    """What the watch cache holds for one ModelDeployment at one moment (copied in the loop)."""

    md: dict[str, Any]
    owned: list[dict[str, Any]] = field(default_factory=list)
    experiment: dict[str, Any] | None = None


class Indexes:
    """Reads of kopf's indexes; only ever called on the event loop (kopf writes them there)."""

    def __init__(self, indices: Mapping[str, Any]) -> None:
        self.md = indices[MD_INDEX]
        self.experiments = indices[EXPERIMENT_INDEX]
        self.owned = [indices[OWNED_INDEX_PREFIX + kind.lower()] for kind in apply.OWNED_KINDS]

    def keys(self) -> list[ObjectKey]:
        return list(self.md)

    def snapshot(self, key: ObjectKey) -> Snapshot | None:
        if key not in self.md:
            return None
        md = next(iter(self.md[key]), None)
        if md is None:
            return None
        objects = [obj for index in self.owned if key in index for obj in index[key]]
        running = None
        if key in self.experiments:
            for item in self.experiments[key]:
                if (item.get("status") or {}).get("phase") == constants.RUNNING:
                    running = item
                    break
        return Snapshot(md=md, owned=objects, experiment=running)


class Controller:
    """The reconcile logic shared by the handlers and the periodic check."""

    def __init__(
        self, *, settings: settings_mod.OperatorSettings, metrics: metrics_mod.Metrics
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._applied: dict[tuple[str, str, str], owned.Applied] = {}
        self._served: dict[str, resolve.ResolvedModel] = {}
        self._generations: dict[str, int] = {}  # uid -> the generation we last converged
        self._verified: dict[str, tuple[Any, ...]] = {}  # uid -> inputs last found converged
        self._written: dict[str, list[dict[str, Any]]] = {}  # uid -> conditions we last wrote
        self._resolved: dict[tuple[str, str, str, str], tuple[float, resolve.ResolvedModel]] = {}
        self.indexes: Indexes | None = None
        self._dirty: set[ObjectKey] = set()
        self._wake: asyncio.Event | None = None
        self.executor: Any = None  # kopf's thread pool, known at start-up
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---- one reconcile at a time per object ----------------------------------------------------
    def _lock(self, uid: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(uid, threading.Lock())

    @contextlib.contextmanager
    def exclusive(self, uid: str, *, wait: bool = True) -> Iterator[bool]:
        lock = self._lock(uid)
        acquired = lock.acquire(blocking=wait)
        try:
            yield acquired
        finally:
            if acquired:
                lock.release()

    def forget(self, namespace: str, name: str, uid: str | None) -> None:
        with self._guard:
            if uid:
                self._locks.pop(uid, None)
                self._served.pop(uid, None)
                self._generations.pop(uid, None)
                self._verified.pop(uid, None)
                self._written.pop(uid, None)
            for applied_key in [k for k in self._applied if k[0] == namespace]:
                if applied_key[2] == name or applied_key[2].startswith(f"{name}-"):
                    self._applied.pop(applied_key, None)

    # ---- the full reconcile ---------------------------------------------------------------------
    def reconcile(
        self,
        body: Mapping[str, Any],
        *,
        retry: int,
        trigger: str,
        snapshot: Snapshot | None = None,
    ) -> None:
        """Resolve, apply, prune and write status; raises kopf errors for kopf to retry."""
        with self.exclusive(body["metadata"]["uid"]):
            self._reconcile(body, retry=retry, trigger=trigger, snapshot=snapshot)

    def _reconcile(
        self,
        body: Mapping[str, Any],
        *,
        retry: int,
        trigger: str,
        snapshot: Snapshot | None,
    ) -> None:
        self.metrics.reconcile_total.labels(kind=KIND).inc()
        log = object_logger(meta.namespace_of(body), meta.name_of(body))
        spec = body.get("spec") or {}
        status = body.get("status") or {}
        existing: list[conditions.Condition] = list(status.get("conditions") or [])
        now = _now()
        try:
            model = self._resolve(
                spec.get("model") or {},
                tracking_uri=meta.tracking_uri(body, self.settings.mlflow_tracking_uri),
            )
        except client.RegistryUnavailable as exc:
            self.metrics.reconcile_errors_total.labels(kind=KIND).inc()
            self._degrade(body, existing, reason="RegistryUnavailable", exc=exc, now=now, log=log)
            delay = min(
                self.settings.registry_retry_seconds * 2**retry, self.settings.resync_seconds
            )
            raise failures.for_kopf(exc, delay=delay) from exc
        except errors.InputError as exc:  # ModelNotFound, or a spec the CRD let through
            self.metrics.reconcile_errors_total.labels(kind=KIND).inc()
            reason = "ModelNotFound" if isinstance(exc, client.ModelNotFound) else "InvalidSpec"
            self._degrade(body, existing, reason=reason, exc=exc, now=now, log=log)
            if trigger == "resync":
                return  # the periodic check keeps looking: the alias or version may appear later
            raise failures.for_kopf(exc) from exc
        try:
            self._converge(body, model=model, trigger=trigger, now=now, snapshot=snapshot, log=log)
        except apply.KubeError as exc:
            self.metrics.reconcile_errors_total.labels(kind=KIND).inc()
            log.warning("applying the desired objects failed: %s", exc)
            raise failures.for_kopf(
                exc, delay=5, what="applying the desired objects failed"
            ) from exc

    def _resolve(self, reference: Mapping[str, Any], *, tracking_uri: str) -> resolve.ResolvedModel:
        """`resolve.resolve`, answered from a lookup of the last `RESOLVE_TTL_SECONDS` if any.

        A burst of ModelDeployments following one alias (1,000 applied at once) then costs the
        registry one lookup per alias, not one per object; failures are never remembered.
        """
        key = (
            tracking_uri,
            str(reference.get("name")),
            str(reference.get("alias")),
            str(reference.get("version")),
        )
        with self._guard:
            hit = self._resolved.get(key)
        if hit is not None and time.monotonic() - hit[0] < RESOLVE_TTL_SECONDS:
            return hit[1]
        model = resolve.resolve(reference, tracking_uri=tracking_uri)
        with self._guard:
            self._resolved[key] = (time.monotonic(), model)
        return model

    def _converge(
        self,
        body: Mapping[str, Any],
        *,
        model: resolve.ResolvedModel,
        trigger: str,
        now: dt.datetime,
        snapshot: Snapshot | None,
        log: Logger,
    ) -> None:
        name, namespace = meta.name_of(body), meta.namespace_of(body)
        status = body.get("status") or {}
        generation = int(body["metadata"].get("generation", 0))
        existing: list[conditions.Condition] = list(status.get("conditions") or [])
        deployments: list[Mapping[str, Any]]
        pruned: list[tuple[str, str]]
        if snapshot is None:  # the relist baseline: read and write everything through the API
            variants, policy = routes.route_variants(
                stable_version=model["version"],
                experiment=self._running_experiment(namespace, name),
            )
            objects = desired.build_desired(
                body, model=model, variants=variants, policy=policy, settings=self.settings
            )
            applied = [apply.apply(obj) for obj in objects]
            pruned = (
                []
                if trigger == "create"
                else apply.prune(
                    namespace=namespace,
                    selector=_workload_selector(name),
                    keep=[desired.key(obj) for obj in objects],
                    owner_uid=body["metadata"]["uid"],
                )
            )
            deployments = [obj for obj in applied if obj.get("kind") == "Deployment"]
        else:
            variants, policy = routes.route_variants(
                stable_version=model["version"], experiment=snapshot.experiment
            )
            objects = desired.build_desired(
                body, model=model, variants=variants, policy=policy, settings=self.settings
            )
            deployments, _, pruned = self._sync(namespace, objects, snapshot.owned)
        ready, message = mdstatus.workloads_readiness(deployments, expected=EXPECTED_DEPLOYMENTS)
        previous = (status.get("model") or {}).get("version")
        reason = self._history_reason(
            body, previous=previous, version=model["version"], trigger=trigger
        )
        updated = mdstatus.served_conditions(
            existing,
            ready=ready,
            message=message,
            drift_enabled=(body.get("spec") or {}).get("drift") is not None,
            generation=generation,
            now=now,
        )
        # Written now, not through kopf's patch (applied after the handler returns): a Deployment
        # that became available meanwhile is then seen by the next check, after this write.
        apply.patch_status(
            common.API_VERSION,
            KIND,
            namespace=namespace,
            name=name,
            status={
                "observedGeneration": generation,
                "model": {"alias": None, **model},  # None deletes a stale alias (merge patch)
                "history": mdstatus.next_history(
                    status.get("history") or [], version=model["version"], now=now, reason=reason
                ),
                "endpoint": meta.service_url(
                    service=meta.router_service_name(name), namespace=namespace
                ),
                "traffic": routes.traffic_summary(variants),
                "conditions": updated,
            },
        )
        self._remember_written(body, updated)
        self._served[body["metadata"]["uid"]] = model
        self._generations[body["metadata"]["uid"]] = generation
        if previous != model["version"]:
            log.info("serving %s version %s (was %s)", model["name"], model["version"], previous)
            _event(
                body,
                warning=False,
                reason="Rollout" if previous else "Resolved",
                message=f"serving {model['name']} version {model['version']}"
                + (f" (was {previous}; {reason})" if previous else ""),
            )
        _events_on_flips(body, existing, updated)
        if pruned:
            _event(
                body,
                warning=False,
                reason="Pruned",
                message="deleted " + ", ".join(f"{kind}/{n}" for kind, n in pruned),
            )
        if snapshot is None and not ready:
            self.refresh_readiness(namespace, name, logger=log)

    def _sync(
        self,
        namespace: str,
        objects: Sequence[dict[str, Any]],
        cached: Sequence[Mapping[str, Any]],
    ) -> tuple[list[Mapping[str, Any]], list[owned.Key], list[owned.Key]]:
        """Apply what differs from the cache, delete what is no longer desired.

        Returns the Deployments as they now are (applied, else cached), the applied and the
        pruned (kind, name) keys.
        """
        by_key = {owned.key_of(obj): obj for obj in cached}
        deployments: list[Mapping[str, Any]] = []
        applied_keys: list[owned.Key] = []
        for obj in objects:
            key = owned.key_of(obj)
            memo_key = (namespace, key[0], key[1])
            current = by_key.get(key)
            if owned.in_sync(obj, current, self._applied.get(memo_key)):
                stored: Mapping[str, Any] | None = current
            else:
                stored = apply.apply(obj)
                applied_keys.append(key)
                self.metrics.applies_total.labels(kind=key[0]).inc()
                self._applied[memo_key] = owned.Applied(
                    digest=owned.digest(obj),
                    resource_version=str(stored["metadata"].get("resourceVersion", "")),
                )
            if key[0] == "Deployment" and stored is not None:
                deployments.append(stored)
        pruned = []
        for extra in owned.extras(desired=objects, owned=cached):
            kind, name = owned.key_of(extra)
            if apply.delete(apply.OWNED_KINDS[kind], kind, namespace=namespace, name=name):
                pruned.append((kind, name))
            self._applied.pop((namespace, kind, name), None)
        return deployments, applied_keys, pruned

    def _history_reason(
        self, body: Mapping[str, Any], *, previous: str | None, version: str, trigger: str
    ) -> str:
        reason = changereason.history_reason(
            previous_version=previous,
            version=version,
            reference=(body.get("spec") or {}).get("model") or {},
            annotations=body["metadata"].get("annotations"),
            trigger=trigger,
        )
        return mdstatus.truncate(reason, mdstatus.HISTORY_REASON_MAX)

    def _degrade(
        self,
        body: Mapping[str, Any],
        existing: list[conditions.Condition],
        *,
        reason: str,
        exc: Exception,
        now: dt.datetime,
        log: Logger,
    ) -> None:
        generation = int(body["metadata"].get("generation", 0))
        updated = mdstatus.degraded_conditions(
            existing, reason=reason, message=str(exc), generation=generation, now=now
        )
        # observedGeneration too: this generation *was* observed, and what came of it is said by
        # the conditions (kubectl wait and Argo CD read the two together).
        apply.patch_status(
            common.API_VERSION,
            KIND,
            namespace=meta.namespace_of(body),
            name=meta.name_of(body),
            status={"observedGeneration": generation, "conditions": updated},
        )
        self._remember_written(body, updated)
        previous = conditions.find(existing, conditions.DEGRADED)
        if previous is None or previous["status"] != "True" or previous["reason"] != reason:
            log.warning("%s: %s", reason, exc)
            _event(body, warning=True, reason=reason, message=str(exc))

    def _running_experiment(self, namespace: str, name: str) -> dict[str, Any] | None:
        for item in apply.list_objects(common.API_VERSION, "Experiment", namespace=namespace):
            if (item.get("spec") or {}).get("deploymentRef") == name and (
                item.get("status") or {}
            ).get("phase") == constants.RUNNING:
                return item
        return None

    # ---- the check: compare with the cache, repair, readiness ----------------------------------
    def check(
        self,
        snap: Snapshot,
        *,
        resolved: resolve.ResolvedModel | Exception | None,
        full: bool,
    ) -> None:
        """Converge one ModelDeployment from the cache; API requests only where it differs.

        `resolved` is the alias's current target (periodic check), None when not looked up, or the
        registry's error. `full` marks the periodic check (which also reads pods of a rollout that
        is not progressing). A lagging spec, a Degraded state or a moved alias take the full
        reconcile.
        """
        md = snap.md
        metadata = md["metadata"]
        if metadata.get("deletionTimestamp"):
            return
        uid = metadata["uid"]
        namespace, name = meta.namespace_of(md), meta.name_of(md)
        log = object_logger(namespace, name)
        with self.exclusive(uid, wait=False) as mine:
            if not mine:
                self._requeue((namespace, name))  # a handler has it now: check again after
                return
            status = md.get("status") or {}
            generation = int(metadata.get("generation", 0))
            if generation < self._generations.get(uid, 0):
                return  # the cache has not caught up with our last reconcile; its event will
            served = self._served.get(uid) or _served_from_status(status)
            observed = status.get("observedGeneration") == generation
            degraded = conditions.is_true(list(status.get("conditions") or []), conditions.DEGRADED)
            moved = isinstance(resolved, dict) and (
                served is None or resolved["version"] != served["version"]
            )
            if not observed or degraded or moved or isinstance(resolved, Exception):
                if full:
                    with contextlib.suppress(kopf.TemporaryError, kopf.PermanentError):
                        self._reconcile(md, retry=0, trigger="resync", snapshot=snap)
                return
            if served is None:
                return
            if self._verified.get(uid) == _fingerprint(snap, served):
                return  # nothing that goes into this object's desired state has changed
            try:
                self._repair(snap, model=served, full=full, log=log)
            except apply.KubeError as exc:
                self.metrics.reconcile_errors_total.labels(kind=KIND).inc()
                log.warning("repair failed (retried at the next check): %s", exc)

    def _repair(
        self, snap: Snapshot, *, model: resolve.ResolvedModel, full: bool, log: Logger
    ) -> None:
        md = snap.md
        namespace = meta.namespace_of(md)
        variants, policy = routes.route_variants(
            stable_version=model["version"], experiment=snap.experiment
        )
        objects = desired.build_desired(
            md, model=model, variants=variants, policy=policy, settings=self.settings
        )
        deployments, repaired, pruned = self._sync(namespace, objects, snap.owned)
        ready = self._update_readiness(md, deployments, full=full, log=log)
        if not repaired and not pruned and ready:
            # Converged and Ready: until one of these inputs changes, nothing needs looking at.
            self._verified[md["metadata"]["uid"]] = _fingerprint(snap, model)
        if pruned:
            _event(
                md,
                warning=False,
                reason="Pruned",
                message="deleted " + ", ".join(f"{kind}/{n}" for kind, n in pruned),
            )
        if repaired:
            log.info(
                "applied %s (differed from the cluster)", ", ".join(f"{k}/{n}" for k, n in repaired)
            )

    def _update_readiness(
        self,
        md: Mapping[str, Any],
        deployments: Sequence[Mapping[str, Any]],
        *,
        full: bool,
        log: Logger,
    ) -> bool:
        """Patch Ready/Progressing where they changed; True when Ready=True is recorded."""
        namespace, name = meta.namespace_of(md), meta.name_of(md)
        status = md.get("status") or {}
        if "observedGeneration" not in status:
            return False
        ready, message = mdstatus.workloads_readiness(deployments, expected=EXPECTED_DEPLOYMENTS)
        cached: list[conditions.Condition] = list(status.get("conditions") or [])
        current = conditions.find(cached, conditions.READY)
        wanted = "True" if ready else "False"
        if current is not None and current["status"] == wanted and (ready or not full):
            return ready  # nothing flipped (a stuck rollout's reason is looked for when full)
        failure = None
        if not ready:
            pods = apply.list_objects(
                "v1", "Pod", namespace=namespace, selector=_workload_selector(name)
            )
            failure = mdstatus.pod_failure_reason(pods)
            if (
                current is not None
                and (current["status"], current["reason"]) == ("False", "RollingOut")
                and failure is None
            ):
                return False  # still rolling out, and nothing says it cannot finish
        # The cache may lag behind our own last status write: decide on the object as it is,
        # which is the cached one when it holds the conditions we last wrote (we are the only
        # writer of this status), else read it back.
        fresh: Mapping[str, Any] | None = md
        if not self._holds_last_write(md):
            fresh = apply.get(common.API_VERSION, KIND, namespace=namespace, name=name)
        if fresh is None or fresh["metadata"].get("deletionTimestamp"):
            return False
        status = fresh.get("status") or {}
        existing: list[conditions.Condition] = list(status.get("conditions") or [])
        if readiness.reconcile_owns_ready(existing) or "observedGeneration" not in status:
            return False  # a degraded deployment's Ready is owned by the reconcile
        updated = mdstatus.rollout_conditions(
            existing,
            ready=ready,
            message=message,
            generation=int(status["observedGeneration"]),
            now=_now(),
            failure=failure,
        )
        if _same_conditions(existing, updated):
            return False  # the cache lagged; the next event brings another check
        apply.patch_status(
            common.API_VERSION, KIND, namespace=namespace, name=name, status={"conditions": updated}
        )
        self._remember_written(fresh, updated)
        log.info("Ready=%s: %s", wanted, message)
        _events_on_flips(fresh, existing, updated)
        return False  # verified at the next check, against the status as now written

    def _remember_written(
        self, body: Mapping[str, Any], written: Sequence[conditions.Condition]
    ) -> None:
        self._written[body["metadata"]["uid"]] = [dict(c) for c in written]

    def _holds_last_write(self, md: Mapping[str, Any]) -> bool:
        """True when `md` (from the cache) carries the conditions this process last wrote."""
        written = self._written.get(md["metadata"]["uid"])
        cached = list((md.get("status") or {}).get("conditions") or [])
        return written is not None and [dict(c) for c in cached] == written

    # ---- readiness from the API (the relist baseline) ------------------------------------------
    def workload_changed(self, deployment: Mapping[str, Any], *, logger: Logger) -> None:
        labels = deployment["metadata"].get("labels") or {}
        md_name = labels.get(meta.LABEL_DEPLOYMENT)
        if md_name:
            self.refresh_readiness(deployment["metadata"]["namespace"], md_name, logger=logger)

    def refresh_readiness(self, namespace: str, md_name: str, *, logger: Logger) -> None:
        """Recompute Ready/Progressing from the Deployments as listed now; patch on a flip."""
        md = apply.get(common.API_VERSION, KIND, namespace=namespace, name=md_name)
        if md is None or md["metadata"].get("deletionTimestamp"):
            return
        status = md.get("status") or {}
        if "observedGeneration" not in status:
            return
        owned_deployments = [
            d
            for d in apply.list_objects(
                "apps/v1", "Deployment", namespace=namespace, selector=_workload_selector(md_name)
            )
            if any(
                o.get("uid") == md["metadata"]["uid"]
                for o in d["metadata"].get("ownerReferences") or []
            )
        ]
        ready, message = mdstatus.workloads_readiness(
            owned_deployments, expected=EXPECTED_DEPLOYMENTS
        )
        existing: list[conditions.Condition] = list(status.get("conditions") or [])
        current = conditions.find(existing, conditions.READY)
        wanted: conditions.Status = "True" if ready else "False"
        if current is not None and current["status"] == wanted:
            return
        if readiness.reconcile_owns_ready(existing):
            return  # a degraded deployment's Ready is owned by the reconcile
        updated = mdstatus.rollout_conditions(
            existing,
            ready=ready,
            message=message,
            generation=int(status["observedGeneration"]),
            now=_now(),
        )
        apply.patch_status(
            common.API_VERSION,
            KIND,
            namespace=namespace,
            name=md_name,
            status={"conditions": updated},
        )
        logger.info("ModelDeployment %s/%s Ready=%s: %s", namespace, md_name, wanted, message)
        _events_on_flips(md, existing, updated)

    # ---- the watch-driven loop -----------------------------------------------------------------
    def _requeue(self, key: ObjectKey) -> None:
        """From a worker thread: check `key` again at the next pass."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.mark_dirty, key)

    def mark_dirty(self, key: ObjectKey) -> None:
        """An owned object or an Experiment changed: check its ModelDeployment soon (loop only)."""
        self._dirty.add(key)
        if self._wake is not None:
            self._wake.set()

    async def run_checks(self, indexes: Indexes, *, executor: Any) -> None:
        """Forever: the dirty ModelDeployments after a debounce, all of them every resync."""
        self.indexes = indexes
        self._wake = asyncio.Event()
        loop = self._loop = asyncio.get_running_loop()
        next_full = time.monotonic() + self.settings.resync_seconds
        while True:
            timeout = max(0.0, next_full - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
            full = time.monotonic() >= next_full
            if not full:
                await asyncio.sleep(DEBOUNCE_SECONDS)
            self._wake.clear()
            if full:
                keys = indexes.keys()
                self._dirty.clear()
                next_full = time.monotonic() + self.settings.resync_seconds
            else:
                keys, self._dirty = list(self._dirty), set()
            snaps = [s for s in (indexes.snapshot(k) for k in keys) if s is not None]
            if not snaps:
                continue
            started = time.monotonic()
            try:
                await self._check_pass(snaps, full=full, loop=loop, executor=executor)
            except Exception:  # the loop must outlive any one pass; the next one retries
                _LOG.exception("a check pass failed")
            self.metrics.check_seconds.observe(time.monotonic() - started)

    async def _check_pass(
        self,
        snaps: Sequence[Snapshot],
        *,
        full: bool,
        loop: asyncio.AbstractEventLoop,
        executor: Any,
    ) -> None:
        resolved: dict[tuple[str, str, str], Any] = {}
        if full:
            resolved = await loop.run_in_executor(
                executor, contextvars.copy_context().run, self._resolve_aliases, snaps
            )
        chunks = [snaps[i::CHECK_CHUNKS] for i in range(CHECK_CHUNKS)]
        await asyncio.gather(
            *(
                loop.run_in_executor(
                    executor,
                    contextvars.copy_context().run,
                    functools.partial(self._check_many, chunk, resolved=resolved, full=full),
                )
                for chunk in chunks
                if chunk
            )
        )

    def _check_many(
        self, snaps: Sequence[Snapshot], *, resolved: Mapping[Any, Any], full: bool
    ) -> None:
        for snap in snaps:
            try:
                self.check(
                    snap, resolved=resolved.get(_alias_key(snap.md, self.settings)), full=full
                )
            except Exception:  # one broken object must not stop the others' checks
                _LOG.exception(
                    "[%s/%s] check failed", meta.namespace_of(snap.md), meta.name_of(snap.md)
                )

    def _resolve_aliases(self, snaps: Sequence[Snapshot]) -> dict[Any, Any]:
        """Each (registry, model, alias) followed by some ModelDeployment, looked up once."""
        out: dict[Any, Any] = {}
        for snap in snaps:
            key = _alias_key(snap.md, self.settings)
            if key is None or key in out:
                continue
            uri, name, alias = key
            with self._guard:  # a fresh lookup: the reconciles it triggers must not use an older
                self._resolved.pop((uri, name, alias, "None"), None)
            try:
                out[key] = self._resolve({"name": name, "alias": alias}, tracking_uri=uri)
            except (errors.InputError, client.RegistryUnavailable) as exc:
                out[key] = exc
        return out


def _alias_key(md: Mapping[str, Any], settings: settings_mod.OperatorSettings) -> Any:
    reference = (md.get("spec") or {}).get("model") or {}
    if not reference.get("alias") or not reference.get("name"):
        return None
    return (
        meta.tracking_uri(md, settings.mlflow_tracking_uri),
        str(reference["name"]),
        str(reference["alias"]),
    )


def _fingerprint(snap: Snapshot, model: resolve.ResolvedModel) -> tuple[Any, ...]:
    """Every input of a check, by resourceVersion: equal fingerprints give equal verdicts."""
    experiment = snap.experiment
    return (
        snap.md["metadata"].get("resourceVersion"),
        model["version"],
        model["runId"],
        None if experiment is None else experiment["metadata"].get("resourceVersion"),
        frozenset(
            (obj.get("kind"), obj["metadata"].get("name"), obj["metadata"].get("resourceVersion"))
            for obj in snap.owned
        ),
    )


def _served_from_status(status: Mapping[str, Any]) -> resolve.ResolvedModel | None:
    model = status.get("model") or {}
    if not model.get("name") or not model.get("version"):
        return None
    return {
        "name": str(model["name"]),
        "version": str(model["version"]),
        "runId": str(model.get("runId") or ""),
        "source": str(model.get("source") or ""),
    }


def _same_conditions(a: Sequence[conditions.Condition], b: Sequence[conditions.Condition]) -> bool:
    return [dict(c) for c in a] == [dict(c) for c in b]


EVENT_MESSAGE_MAX = 1024


def _event(body: Mapping[str, Any], *, warning: bool, reason: str, message: str) -> None:
    """A Kubernetes Event on the ModelDeployment, posted by us (source modelpilot-operator)."""
    try:
        apply.post_event(
            body,
            type_="Warning" if warning else "Normal",
            reason=reason,
            message=mdstatus.truncate(message, EVENT_MESSAGE_MAX),
        )
    except apply.KubeError as exc:  # an Event is a courtesy; the status already says it
        object_logger(meta.namespace_of(body), meta.name_of(body)).warning(
            "posting the %s event failed: %s", reason, exc
        )


def _events_on_flips(
    body: Mapping[str, Any],
    before: list[conditions.Condition],
    after: list[conditions.Condition],
) -> None:
    """Normal Events for routine transitions; Warning only where a person must act."""
    old, new = conditions.find(before, conditions.READY), conditions.find(after, conditions.READY)
    if new is not None and (
        old is None or old["status"] != new["status"] or old["reason"] != new["reason"]
    ):
        if new["status"] == "True":
            if old is None or old["status"] != "True":
                _event(body, warning=False, reason="Ready", message=new["message"])
        elif new["reason"] in mdstatus.NEEDS_ACTION:
            _event(body, warning=True, reason=new["reason"], message=new["message"])
        elif old is not None and old["status"] == "True":
            # A rollout of a new version takes Ready down until it is available: routine.
            _event(body, warning=False, reason="RollingOut", message=new["message"])
    old_d, new_d = (
        conditions.find(before, conditions.DEGRADED),
        conditions.find(after, conditions.DEGRADED),
    )
    if (
        old_d is not None
        and old_d["status"] == "True"
        and new_d is not None
        and new_d["status"] == "False"
    ):
        _event(body, warning=False, reason="Recovered", message=new_d["message"])


def _owned_index(kind: str) -> Callable[..., Any]:
    async def index(body: kopf.Body, **_: Any) -> dict[ObjectKey, dict[str, Any]] | None:
        md_name = owned.controller_owner(body)
        if md_name is None:
            return None
        return {(str(body["metadata"]["namespace"]), md_name): owned.trim(body)}

    index.__name__ = OWNED_INDEX_PREFIX + kind.lower()
    return index


def register(
    registry: kopf.OperatorRegistry,
    *,
    settings: settings_mod.OperatorSettings,
    metrics: metrics_mod.Metrics,
) -> Controller:
    """Declare the ModelDeployment handlers in `registry`; returns the controller (for tests)."""
    controller = Controller(settings=settings, metrics=metrics)
    group, version = common.GROUP, common.VERSION
    if settings.resync_mode == "relist":
        _register_relist(registry, controller)
        return controller

    @kopf.index(group, version, PLURAL, id=MD_INDEX, registry=registry)
    async def modeldeployment_index(body: kopf.Body, **_: Any) -> object:
        key = (meta.namespace_of(body), meta.name_of(body))
        controller.mark_dirty(key)  # checked after the debounce, from the updated index
        return {key: owned.trim(body)}

    @kopf.index(group, version, "experiments", id=EXPERIMENT_INDEX, registry=registry)
    async def modeldeployment_experiment_index(body: kopf.Body, **_: Any) -> object:
        ref = (body.get("spec") or {}).get("deploymentRef")
        if not ref:
            return None
        return {(meta.namespace_of(body), str(ref)): owned.trim(body)}

    @kopf.on.event(
        group, version, "experiments", id="modeldeployment_experiment_event", registry=registry
    )
    async def modeldeployment_experiment_event(body: kopf.Body, **_: Any) -> None:
        # A Running Experiment's weights are part of the routes: check the deployment it names.
        ref = (body.get("spec") or {}).get("deploymentRef")
        if ref:
            controller.mark_dirty((str(body["metadata"]["namespace"]), str(ref)))

    for kind, api_version in apply.OWNED_KINDS.items():
        plural = apply.KINDS[kind][0]
        group_, _, version_ = api_version.rpartition("/")
        index_fn = _owned_index(kind)
        kopf.index(
            *((group_, version_, plural) if group_ else (version_, plural)),
            id=OWNED_INDEX_PREFIX + kind.lower(),
            labels={
                meta.LABEL_DEPLOYMENT: kopf.PRESENT,
                "app.kubernetes.io/managed-by": meta.MANAGED_BY,
            },
            registry=registry,
        )(index_fn)
        kopf.on.event(
            *((group_, version_, plural) if group_ else (version_, plural)),
            labels={
                meta.LABEL_DEPLOYMENT: kopf.PRESENT,
                "app.kubernetes.io/managed-by": meta.MANAGED_BY,
            },
            id=f"modeldeployment_owned_{kind.lower()}_event",
            registry=registry,
        )(_owned_event(controller))

    def snapshot_of(body: kopf.Body) -> Snapshot:
        key = (meta.namespace_of(body), meta.name_of(body))
        snap = controller.indexes.snapshot(key) if controller.indexes is not None else None
        return Snapshot(
            md=dict(body),
            owned=snap.owned if snap is not None else [],
            experiment=snap.experiment if snap is not None else None,
        )

    async def in_thread(fn: Callable[[], None]) -> None:
        # kopf's own pool, with this context (kopf's per-object logging and event queue).
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(controller.executor, contextvars.copy_context().run, fn)

    @kopf.on.startup(registry=registry)
    async def modeldeployment_checks_start(
        memo: kopf.Memo, settings: kopf.OperatorSettings, **kwargs: Any
    ) -> None:
        indexes = Indexes(kwargs)
        controller.indexes = indexes
        controller.executor = settings.execution.executor
        memo["modelpilot_checks"] = asyncio.create_task(
            controller.run_checks(indexes, executor=settings.execution.executor)
        )

    @kopf.on.cleanup(registry=registry)
    async def modeldeployment_checks_stop(memo: kopf.Memo, **_: Any) -> None:
        task = memo.get("modelpilot_checks")
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @kopf.on.create(group, version, PLURAL, registry=registry)
    async def modeldeployment_create(body: kopf.Body, retry: int, **_: Any) -> None:
        snap = snapshot_of(body)
        await in_thread(
            functools.partial(
                controller.reconcile, snap.md, retry=retry, trigger="create", snapshot=snap
            ),
        )

    @kopf.on.update(group, version, PLURAL, field="spec", registry=registry)
    async def modeldeployment_update(body: kopf.Body, retry: int, **_: Any) -> None:
        snap = snapshot_of(body)
        await in_thread(
            functools.partial(
                controller.reconcile, snap.md, retry=retry, trigger="update", snapshot=snap
            ),
        )

    @kopf.on.resume(group, version, PLURAL, registry=registry)
    async def modeldeployment_resume(body: kopf.Body, retry: int, **_: Any) -> None:
        snap = snapshot_of(body)
        status = snap.md.get("status") or {}
        if status.get("observedGeneration") != snap.md["metadata"].get("generation"):
            fn = functools.partial(
                controller.reconcile, snap.md, retry=retry, trigger="resume", snapshot=snap
            )
        else:
            # Already served: compare with the cache only (an operator restart costs no writes).
            fn = functools.partial(controller.check, snap, resolved=None, full=True)
        await in_thread(fn)

    @kopf.on.event(group, version, PLURAL, id="modeldeployment_event", registry=registry)
    async def modeldeployment_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        # No finalizer, so no deletion handler: forget a deleted object when its watch says so.
        if event.get("type") == "DELETED":
            controller.forget(
                meta.namespace_of(body), meta.name_of(body), body["metadata"].get("uid")
            )

    return controller


def _owned_event(controller: Controller) -> Callable[..., Any]:
    async def modeldeployment_owned_event(body: kopf.Body, **_: Any) -> None:
        md_name = owned.controller_owner(body)
        if md_name is not None:
            controller.mark_dirty((str(body["metadata"]["namespace"]), md_name))

    return modeldeployment_owned_event


def _register_relist(registry: kopf.OperatorRegistry, controller: Controller) -> None:
    """The former handlers: a kopf timer per object re-resolving and re-applying by listing."""
    group, version = common.GROUP, common.VERSION
    settings = controller.settings

    @kopf.on.create(group, version, PLURAL, registry=registry)
    def modeldeployment_create(body: kopf.Body, retry: int, **_: Any) -> None:
        controller.reconcile(body, retry=retry, trigger="create")

    @kopf.on.update(group, version, PLURAL, field="spec", registry=registry)
    def modeldeployment_update(body: kopf.Body, retry: int, **_: Any) -> None:
        controller.reconcile(body, retry=retry, trigger="update")

    @kopf.on.resume(group, version, PLURAL, registry=registry)
    def modeldeployment_resume(body: kopf.Body, retry: int, **_: Any) -> None:
        controller.reconcile(body, retry=retry, trigger="resume")

    @kopf.timer(
        group,
        version,
        PLURAL,
        interval=settings.resync_seconds,
        initial_delay=settings.resync_seconds,
        registry=registry,
    )
    def modeldeployment_resync(body: kopf.Body, **kwargs: Any) -> None:
        controller.reconcile(body, retry=kwargs.get("retry", 0), trigger="resync")

    @kopf.on.event(
        "apps",
        "v1",
        "deployments",
        labels={
            "app.kubernetes.io/managed-by": meta.MANAGED_BY,
            meta.LABEL_DEPLOYMENT: kopf.PRESENT,
            meta.LABEL_EXPERIMENT: kopf.ABSENT,
        },
        registry=registry,
    )
    def modeldeployment_workload_event(body: kopf.Body, logger: Logger, **_: Any) -> None:
        try:
            controller.workload_changed(body, logger=logger)
        except apply.KubeError as exc:
            logger.warning("readiness update failed: %s", exc)
