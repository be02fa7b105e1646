"""Hyperparameter sweeps from a W&B-style config, run on Optuna, each trial a nested MLflow run.

    name: breast-cancer-sgd
    program: train.py            # relative to this file; defines train(params, reporter)
    function: train
    method: bayes                # grid | random | bayes (Optuna's TPE)
    metric: {name: val_accuracy, goal: maximize}
    run_cap: 20
    parameters:
      alpha: {distribution: log_uniform_values, min: 1.0e-6, max: 1.0}
      loss: {values: [hinge, log_loss]}
    early_terminate: {type: median, min_iter: 3}   # or {type: hyperband, min_iter: 1, eta: 3}

Design decision: the Optuna study's storage (a SQLite file next to the config unless `--storage`
says otherwise) is the sweep's only state. It holds the trials and, as study attributes, the MLflow
parent run id and the current best run, so running the same command again resumes the same study
under the same parent run until `run_cap` trials have finished. The program reports intermediate
values through `Reporter.report`, which logs them to MLflow and raises `optuna.TrialPruned` when the
pruner says so.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import optuna

from modelpilot import errors
from modelpilot.lifecycle import yamlio
from modelpilot.registry import client as registry_client
from modelpilot.registry import runs

METHODS = ("grid", "random", "bayes")
DISTRIBUTIONS = (
    "constant",
    "categorical",
    "uniform",
    "log_uniform_values",
    "int_uniform",
    "q_uniform",
)
BEST_TAG = "modelpilot.sweep.best"


@dataclass(frozen=True)
class Parameter:
    name: str
    distribution: str
    values: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    q: float = 1.0


@dataclass(frozen=True)
class Pruning:
    type: str  # none | median | hyperband
    min_iter: int = 1
    eta: int = 3
    startup: int = 5


@dataclass(frozen=True)
class SweepConfig:
    name: str
    program: Path
    function: str
    method: str
    metric: str
    goal: str
    run_cap: int
    seed: int
    experiment: str
    parameters: tuple[Parameter, ...]
    pruning: Pruning


def _parameter(name: str, raw: Any) -> Parameter:
    where = f"parameters.{name}"
    if not isinstance(raw, dict):
        raise errors.InputError(f"{where}: must be a mapping (values, value, or min/max)")
    yamlio.only_keys(raw, {"values", "value", "distribution", "min", "max", "q"}, where=where)
    dist = raw.get("distribution")
    if "value" in raw:
        return Parameter(name, "constant", values=(raw["value"],))
    if "values" in raw:
        vals = raw["values"]
        if not isinstance(vals, list) or not vals:
            raise errors.InputError(f"{where}.values: must be a non-empty list")
        return Parameter(name, "categorical", values=tuple(vals))
    if "min" not in raw or "max" not in raw:
        raise errors.InputError(f"{where}: give values, value, or both min and max")
    low = yamlio.number(raw["min"], field=f"{where}.min")
    high = yamlio.number(raw["max"], field=f"{where}.max")
    if low >= high:
        raise errors.InputError(f"{where}: min {low:g} must be less than max {high:g}")
    if dist is None:
        both_int = all(
            isinstance(raw[k], int) and not isinstance(raw[k], bool) for k in ("min", "max")
        )
        dist = "int_uniform" if both_int else "uniform"
    if dist not in DISTRIBUTIONS[2:]:
        raise errors.InputError(
            f"{where}.distribution: {dist!r} is not one of {', '.join(DISTRIBUTIONS[2:])}"
        )
    if dist == "log_uniform_values" and low <= 0:
        raise errors.InputError(f"{where}.min: log_uniform_values needs min > 0, got {low:g}")
    if dist == "int_uniform" and (low != int(low) or high != int(high)):
        raise errors.InputError(f"{where}: int_uniform needs integer min and max")
    q = yamlio.number(raw.get("q", 1.0), field=f"{where}.q", low=1e-12)
    return Parameter(name, dist, low=low, high=high, q=q)


def parse_config(data: Mapping[str, Any], *, base_dir: Path) -> SweepConfig:
    """Validate a sweep config; every error names the field and what is allowed."""
    allowed = {
        "name",
        "program",
        "function",
        "method",
        "metric",
        "run_cap",
        "seed",
        "experiment",
        "parameters",
        "early_terminate",
        "description",
    }
    yamlio.only_keys(dict(data), allowed, where="sweep config")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise errors.InputError("name: the sweep needs a name (it names the Optuna study)")
    method = data.get("method", "bayes")
    if method not in METHODS:
        raise errors.InputError(f"method: {method!r} is not one of {', '.join(METHODS)}")
    metric = data.get("metric")
    if not isinstance(metric, dict) or not isinstance(metric.get("name"), str):
        raise errors.InputError("metric: must be a mapping with name and goal")
    goal = metric.get("goal", "maximize")
    if goal not in ("maximize", "minimize"):
        raise errors.InputError(f"metric.goal: {goal!r} is not one of maximize, minimize")
    program = data.get("program")
    if not isinstance(program, str) or not program:
        raise errors.InputError(
            "program: must name the Python file that defines the train function"
        )
    program_path = (base_dir / program).resolve()
    if not program_path.is_file():
        raise errors.InputError(f"program: {program_path} does not exist")
    params = data.get("parameters")
    if not isinstance(params, dict) or not params:
        raise errors.InputError("parameters: must be a non-empty mapping of parameter name to spec")
    parameters = tuple(_parameter(str(k), v) for k, v in params.items())
    if method == "grid":
        bad = [p.name for p in parameters if p.distribution not in ("constant", "categorical")]
        if bad:
            raise errors.InputError(
                f"parameters.{bad[0]}: method grid needs a values list for every parameter"
            )
    grid_size = math.prod(len(p.values) or 1 for p in parameters)
    default_cap = grid_size if method == "grid" else 20
    run_cap = int(
        yamlio.number(data.get("run_cap", default_cap), field="run_cap", low=1, high=100_000)
    )
    et = data.get("early_terminate") or {"type": "none"}
    if not isinstance(et, dict):
        raise errors.InputError("early_terminate: must be a mapping with a type")
    yamlio.only_keys(et, {"type", "min_iter", "eta", "startup"}, where="early_terminate")
    kind = et.get("type", "none")
    if kind not in ("none", "median", "hyperband"):
        raise errors.InputError(
            f"early_terminate.type: {kind!r} is not one of none, median, hyperband"
        )
    pruning = Pruning(
        type=kind,
        min_iter=int(yamlio.number(et.get("min_iter", 1), field="early_terminate.min_iter", low=0)),
        eta=int(yamlio.number(et.get("eta", 3), field="early_terminate.eta", low=2)),
        startup=int(yamlio.number(et.get("startup", 5), field="early_terminate.startup", low=0)),
    )
    return SweepConfig(
        name=name,
        program=program_path,
        function=str(data.get("function", "train")),
        method=method,
        metric=metric["name"],
        goal=goal,
        run_cap=run_cap,
        seed=int(yamlio.number(data.get("seed", 0), field="seed")),
        experiment=str(data.get("experiment", name)),
        parameters=parameters,
        pruning=pruning,
    )


def build_sampler(config: SweepConfig, *, offset: int = 0) -> optuna.samplers.BaseSampler:
    # The seed is shifted by the number of trials already in the study, so a resumed random or TPE
    # sweep does not replay the points it already tried.
    seed = config.seed + offset
    if config.method == "grid":
        space = {p.name: list(p.values) for p in config.parameters}
        return optuna.samplers.GridSampler(space, seed=seed)
    if config.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def build_pruner(config: SweepConfig) -> optuna.pruners.BasePruner:
    p = config.pruning
    if p.type == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=p.startup, n_warmup_steps=p.min_iter)
    if p.type == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=max(1, p.min_iter), reduction_factor=p.eta
        )
    return optuna.pruners.NopPruner()


def suggest(trial: optuna.Trial, parameters: tuple[Parameter, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in parameters:
        if p.distribution == "constant":
            out[p.name] = p.values[0]
        elif p.distribution == "categorical":
            out[p.name] = trial.suggest_categorical(p.name, list(p.values))
        elif p.distribution == "int_uniform":
            out[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high))
        elif p.distribution == "log_uniform_values":
            out[p.name] = trial.suggest_float(p.name, p.low, p.high, log=True)
        elif p.distribution == "q_uniform":
            out[p.name] = trial.suggest_float(p.name, p.low, p.high, step=p.q)
        else:
            out[p.name] = trial.suggest_float(p.name, p.low, p.high)
    return out


class TrialCrashedError(Exception):
    """The program raised on one trial's parameters; the trial is FAILED, the sweep goes on."""


class Reporter:
    """Handed to the program: report intermediate metrics; raises TrialPruned when told to stop."""

    def __init__(self, trial: optuna.Trial, metric: str) -> None:
        self._trial = trial
        self._metric = metric
        self.last_step: int | None = None

    def report(self, step: int, values: Mapping[str, float]) -> None:
        runs.log_metrics(values, step=step)
        self.last_step = step
        if self._metric in values:
            self._trial.report(float(values[self._metric]), step)
            if self._trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step}")


TrainFn = Callable[[dict[str, Any], Reporter], Mapping[str, float]]


def load_program(config: SweepConfig) -> TrainFn:
    spec = importlib.util.spec_from_file_location(f"modelpilot_sweep_{config.name}", config.program)
    if spec is None or spec.loader is None:
        raise errors.InputError(f"program: cannot import {config.program}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn = getattr(module, config.function, None)
    if not callable(fn):
        raise errors.InputError(
            f"function: {config.program} defines no function {config.function!r}"
        )
    train: TrainFn = fn
    return train


def default_storage(config_path: Path) -> str:
    return f"sqlite:///{config_path.resolve().with_suffix('.optuna.db')}"


@dataclass(frozen=True)
class SweepResult:
    study_name: str
    storage: str
    parent_run_id: str
    best_run_id: str
    best_value: float
    best_params: dict[str, Any]
    states: dict[str, int]  # COMPLETE / PRUNED / FAIL -> count
    ran_now: int


def run_sweep(
    *,
    config: SweepConfig,
    storage: str,
    tracking_uri: str | None,
    max_trials: int | None = None,
) -> SweepResult:
    """Run (or resume) the sweep until run_cap trials are done or `max_trials` ran in this call."""
    registry_client.configure(tracking_uri)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    train = load_program(config)
    direction: Literal["maximize", "minimize"] = (
        "maximize" if config.goal == "maximize" else "minimize"
    )
    try:
        study = optuna.load_study(study_name=config.name, storage=storage)
        if study.direction.name.lower() != direction:
            raise errors.InputError(
                f"metric.goal: study {config.name} in {storage} was created to "
                f"{study.direction.name.lower()}"
            )
    except KeyError:
        study = optuna.create_study(study_name=config.name, storage=storage, direction=direction)
    finished = [t for t in study.trials if t.state.is_finished()]
    study.sampler = build_sampler(config, offset=len(study.trials))
    study.pruner = build_pruner(config)
    todo = config.run_cap - len(finished)
    if max_trials is not None:
        todo = min(todo, max_trials)
    parent_id = study.user_attrs.get("mlflow_parent_run_id")
    parent_kwargs: dict[str, Any] = (
        {"run_id": parent_id}
        if parent_id
        else {
            "experiment": config.experiment,
            "run_name": f"sweep-{config.name}",
            "tags": {"modelpilot.sweep.name": config.name, "modelpilot.sweep.storage": storage},
        }
    )

    with runs.start_run(**parent_kwargs) as parent:
        if not parent_id:
            study.set_user_attr("mlflow_parent_run_id", parent)
            runs.log_dict(
                {
                    "name": config.name,
                    "method": config.method,
                    "metric": config.metric,
                    "goal": config.goal,
                    "run_cap": config.run_cap,
                    "parameters": [p.__dict__ for p in config.parameters],
                },
                "sweep.json",
            )

        def objective(trial: optuna.Trial) -> float:
            params = suggest(trial, config.parameters)
            pruned = False
            result: dict[str, float] = {}
            with runs.start_run(
                run_name=f"{config.name}-trial-{trial.number}",
                nested=True,
                tags={
                    "modelpilot.sweep.name": config.name,
                    "modelpilot.sweep.trial": str(trial.number),
                },
            ) as run_id:
                trial.set_user_attr("mlflow_run_id", run_id)
                runs.log_params(params)
                reporter = Reporter(trial, config.metric)
                try:
                    result = dict(train(dict(params), reporter))
                except optuna.TrialPruned:
                    pruned = True
                    runs.set_tags(
                        {
                            "modelpilot.sweep.state": "pruned",
                            "modelpilot.sweep.pruned_at_step": str(reporter.last_step),
                        }
                    )
                except errors.ModelpilotError:
                    raise
                except Exception as exc:
                    # The program crashed on these parameters: keep the traceback with the trial's
                    # run (ended FAILED) and let the sweep go on, as a W&B agent does.
                    runs.set_tags(
                        {
                            "modelpilot.sweep.state": "failed",
                            "modelpilot.sweep.error": f"{type(exc).__name__}: {exc}"[:500],
                        }
                    )
                    runs.log_text(traceback.format_exc(), "error.txt")
                    raise TrialCrashedError(
                        f"trial {trial.number}: {type(exc).__name__}: {exc}"
                    ) from exc
                else:
                    if config.metric not in result:
                        raise errors.InputError(
                            f"metric.name: {config.program.name}:{config.function} returned no "
                            f"{config.metric!r} (it returned {', '.join(result) or 'nothing'})"
                        )
                    runs.log_metrics(result)
                    runs.set_tags({"modelpilot.sweep.state": "complete"})
            if pruned:
                # Raised after the nested run has ended, so it ends FINISHED with its pruned tag.
                raise optuna.TrialPruned(f"pruned at step {reporter.last_step}")
            return float(result[config.metric])

        if todo > 0:
            study.optimize(objective, n_trials=todo, catch=(TrialCrashedError,))
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not complete:
            raise errors.CheckFailed(f"sweep {config.name}: no trial completed")
        best = study.best_trial
        best_run = str(best.user_attrs["mlflow_run_id"])
        previous = study.user_attrs.get("best_run_id")
        if previous and previous != best_run:
            runs.delete_tag(previous, BEST_TAG)
        runs.set_tags({BEST_TAG: "true"}, run_id=best_run)
        study.set_user_attr("best_run_id", best_run)
        runs.set_tags(
            {
                "modelpilot.sweep.best_run_id": best_run,
                "modelpilot.sweep.best_value": f"{best.value:.6g}",
                "modelpilot.sweep.best_trial": str(best.number),
                **{f"modelpilot.sweep.best_param.{k}": v for k, v in best.params.items()},
            }
        )
    states: dict[str, int] = {}
    for t in study.trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    return SweepResult(
        study_name=config.name,
        storage=storage,
        parent_run_id=parent,
        best_run_id=best_run,
        best_value=float(best.value or 0.0),
        best_params=dict(best.params),
        states=states,
        ran_now=max(todo, 0),
    )


def grid_points(config: SweepConfig) -> list[dict[str, Any]]:
    """Every point of a grid sweep, in order (for dry runs and tests)."""
    names = [p.name for p in config.parameters]
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(p.values for p in config.parameters))
    ]
