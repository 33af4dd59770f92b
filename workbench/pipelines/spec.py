"""The pipeline file format: a Pipeline of Steps, read and checked whole before anything runs.

`load_pipeline` raises one PipelineError naming the file, the step and the field: unknown
notebooks, parameters the notebook's `parameters` cell does not define, values of the wrong type,
`-p` keys the pipeline does not declare, cycles in `needs`, bad cron lines, and the run
configuration of `train.ipynb` and `tune.ipynb` steps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from workbench.config import check_name
from workbench.errors import BadInput, ConfigError
from workbench.home import NOTEBOOKS_DIR
from workbench.pipelines.cron import check_cron
from workbench.pipelines.introspect import NOT_LITERAL, display_path, find_notebook, notebook_parameters
from workbench.pipelines.references import DEFERRED, check_references, known_now

TOP_LEVEL_FIELDS = ("name", "description", "parameters", "schedule", "experiment", "steps")
STEP_FIELDS = ("notebook", "parameters", "needs", "retries", "timeout", "gpu")
DEFAULT_EXPERIMENT = "workbench-pipelines"
MAX_FILE_BYTES = 1_000_000
MAX_EXPANDED_VALUES = 100_000  # scalars, lists and mappings, with every alias written out
# Pipeline and step names become MLflow run names (NAME-MMDD-HHMMSS), tag keys (step.NAME, at most
# 250 characters) and file names (NAME-attemptN.outputs.json, at most 255 bytes): 200 fits them all.
MAX_NAME = 200
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class PipelineError(BadInput):
    """A pipeline file or a request that cannot run; the message names the file and the field."""


@dataclass
class Step:
    name: str
    notebook: Path
    notebook_text: str  # the content read at validation: what runs is what was hashed
    parameters: dict[str, Any]
    needs: list[str]
    retries: int = 0
    timeout: float | None = None
    gpu: bool = False
    notebook_defaults: dict[str, Any] = field(default_factory=dict)


@dataclass
class Pipeline:
    name: str
    path: Path
    parameters: dict[str, Any]
    steps: dict[str, Step]  # in topological order
    description: str = ""
    schedule: str | None = None
    experiment: str = DEFAULT_EXPERIMENT

    @property
    def label(self) -> str:
        return display_path(self.path)


def load_pipeline(path: str | Path, overrides: dict[str, str] | None = None) -> Pipeline:
    """Read and check a whole pipeline file; raises PipelineError naming the file and field."""
    path = Path(path)
    label = display_path(path)
    if not path.is_file():
        raise PipelineError(f"{label}: no such pipeline file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise PipelineError(f"{label}: {path.stat().st_size} bytes; a pipeline file is at most {MAX_FILE_BYTES}")
    try:
        text = path.read_text()
        _check_expansion(yaml.compose(text), label)
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PipelineError(f"{label}: not valid YAML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise PipelineError(f"{label}: not UTF-8 text (byte {exc.start})") from None
    except RecursionError:
        raise PipelineError(f"{label}: nested too deeply") from None
    if not isinstance(document, dict):
        raise PipelineError(f"{label}: expected a mapping with {', '.join(TOP_LEVEL_FIELDS)}")

    def fail(where: str, message: str) -> PipelineError:
        return PipelineError(f"{label}: {where}: {message}")

    _known_fields(document, TOP_LEVEL_FIELDS, "pipeline", fail)
    name = document.get("name")
    if not isinstance(name, str) or not NAME.match(name) or len(name) > MAX_NAME:
        raise fail("name", f"{_shown(name)}: required, the pipeline's name (letters, digits, '.', '-' and '_'; "
                           f"at most {MAX_NAME} characters)")
    parameters = document.get("parameters") or {}
    if not isinstance(parameters, dict) or not all(isinstance(k, str) and IDENTIFIER.match(k) for k in parameters):
        raise fail("parameters", "a mapping of parameter names (letters, digits, _) to default values")
    parameters = dict(parameters)
    for key, raw in (overrides or {}).items():
        if key not in parameters:
            raise fail(f"-p {key}", f"unknown pipeline parameter; this pipeline declares: "
                       f"{', '.join(parameters) or 'none'}")
        value = raw if isinstance(parameters[key], str) or not isinstance(raw, str) else _parse_value(raw)
        problem = type_problem(value, parameters[key])
        if problem:
            raise fail(f"-p {key}", problem)
        parameters[key] = value
    schedule = document.get("schedule")
    if schedule is not None:
        check_cron(schedule, lambda message: fail("schedule", message))
    experiment = document.get("experiment", DEFAULT_EXPERIMENT)
    try:
        check_name("experiment", experiment if isinstance(experiment, str) and experiment.strip() else None)
    except ConfigError as error:
        raise fail("experiment", f"{_shown(experiment)}: an MLflow experiment name ({error.allowed})") from None

    raw_steps = document.get("steps")
    if not isinstance(raw_steps, dict) or not raw_steps:
        raise fail("steps", "a mapping of step names to steps (notebook, parameters, needs, ...)")
    steps = {}
    for step_name, raw in raw_steps.items():
        if not isinstance(step_name, str) or not NAME.match(step_name) or len(step_name) > MAX_NAME:
            raise fail(f"steps.{_shown(step_name)}", f"step names use letters, digits, '.', '-' and '_' (at most "
                                                     f"{MAX_NAME} characters)")
        steps[step_name] = _load_step(step_name, raw, parameters,
                                      lambda where, message, s=step_name: fail(f"step '{s}'", f"{where}: {message}"
                                                                              if where else message))
    for step in steps.values():
        unknown = [n for n in step.needs if n not in steps]
        if unknown:
            raise fail(f"step '{step.name}'", f"needs: unknown step {unknown[0]!r}; steps: {', '.join(steps)}")
    order = topological_order(steps, lambda cycle: fail("steps", "needs form a cycle: " + " -> ".join(cycle)))
    pipeline = Pipeline(name, path.resolve(), parameters, {n: steps[n] for n in order},
                        str(document.get("description") or ""), schedule, experiment)
    for step in pipeline.steps.values():
        _check_config(step, parameters, lambda message, s=step.name: fail(f"step '{s}'", message))
    return pipeline


def _shown(value: Any, limit: int = 60) -> str:
    """A value as a message quotes it: its repr, cut short when long."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(str(value))} characters)"


def _known_fields(mapping: dict, allowed: tuple[str, ...], what: str, fail) -> None:
    for key in mapping:
        if key not in allowed:
            raise fail(str(key), f"unknown {what} field; allowed: {', '.join(allowed)}")


def _load_step(name: str, raw: Any, pipeline_parameters: dict, fail) -> Step:
    if not isinstance(raw, dict):
        raise fail("", f"expected a mapping with {', '.join(STEP_FIELDS)}")
    for key in raw:
        if key not in STEP_FIELDS:
            raise fail(str(key), f"unknown step field; allowed: {', '.join(STEP_FIELDS)}")
    notebook = find_notebook(raw.get("notebook"), lambda message: fail("notebook", message))
    text = notebook.read_text()
    defaults = notebook_parameters(notebook, text, lambda message: fail("notebook", message))
    needs = raw.get("needs") or []
    needs = [needs] if isinstance(needs, str) else needs
    if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
        raise fail("needs", "a list of step names")
    if name in needs:
        raise fail("needs", f"a step cannot need itself ({name})")
    parameters = raw.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise fail("parameters", "a mapping of notebook parameter names to values")
    for key, value in parameters.items():
        if defaults is None:
            raise fail(f"parameters.{key}", f"{display_path(notebook)} has no cell tagged 'parameters' "
                       "to receive it")
        if key not in defaults and notebook != (NOTEBOOKS_DIR / "train.ipynb").resolve():
            # train.ipynb also takes the options its task and model declare: _check_config checks those
            raise fail(f"parameters.{key}", f"unknown parameter of {display_path(notebook)}; its parameters "
                       f"cell defines: {', '.join(defaults) or 'nothing'}")
        check_references(f"parameters.{key}", value, needs, pipeline_parameters, fail)
        known = known_now(value, pipeline_parameters)
        problem = type_problem(known, defaults[key]) if key in defaults else None
        if problem:
            raise fail(f"parameters.{key}", problem)
    retries = raw.get("retries", 0)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise fail("retries", f"{retries!r}: an integer >= 0 (attempts after the first)")
    timeout = parse_duration(raw.get("timeout"), lambda message: fail("timeout", message))
    gpu = raw.get("gpu", False)
    if not isinstance(gpu, bool):
        raise fail("gpu", f"{gpu!r}: true or false")
    return Step(name, notebook, text, dict(parameters), list(dict.fromkeys(needs)), retries, timeout, gpu,
                defaults or {})


def type_problem(value: Any, default: Any) -> str | None:
    """Why `value` cannot replace `default` (same kind of value; ints pass for floats), or None."""
    if value is DEFERRED or default is None or default is NOT_LITERAL:
        return None
    kinds = ((bool, "a boolean (true/false)"), (int, "an integer"), (float, "a number"), (str, "a string"),
             ((list, tuple), "a list"), (dict, "a mapping"))
    wanted = next((name for kind, name in kinds if isinstance(default, kind)), None)
    if wanted is None:
        return None
    ok = {
        "a boolean (true/false)": isinstance(value, bool),
        "an integer": isinstance(value, int) and not isinstance(value, bool),
        "a number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "a string": isinstance(value, str),
        "a list": isinstance(value, (list, tuple)),
        "a mapping": isinstance(value, dict),
    }[wanted]
    if ok:
        return None
    return f"{value!r} is not {wanted} (the default is {default!r})"


def _check_expansion(root, label: str) -> None:
    """Aliases share one object when YAML loads, but every later copy (JSON for MLflow, notebook
    parameters) writes them out in full: nine nested aliases of nine make a billion values. Count
    the values as written out, before anything does."""
    sizes: dict[int, int] = {}

    def size(node) -> int:
        if id(node) not in sizes:
            sizes[id(node)] = 1  # a node that contains itself counts once
            if isinstance(node, yaml.SequenceNode):
                sizes[id(node)] = 1 + sum(size(child) for child in node.value)
            elif isinstance(node, yaml.MappingNode):
                sizes[id(node)] = 1 + sum(size(k) + size(v) for k, v in node.value)
        if sizes[id(node)] > MAX_EXPANDED_VALUES:
            raise PipelineError(f"{label}: its aliases expand to more than {MAX_EXPANDED_VALUES} values; "
                                "a pipeline file must stay that small written out")
        return sizes[id(node)]

    if root is not None:
        size(root)


def _parse_value(text: str) -> Any:
    """`-p key=value` values read as YAML scalars: 3 is an int, 0.1 a float, true a boolean."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_duration(value: Any, fail) -> float | None:
    """Seconds as a number, or a string such as 90s, 20m, 2h."""
    if value is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600}
    seconds = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*[smh]\s*", value):
        seconds = float(value.strip()[:-1]) * units[value.strip()[-1]]
    if seconds is None or seconds <= 0:
        raise fail(f"{value!r}: seconds > 0, or a duration such as 90s, 20m, 2h")
    return seconds


def topological_order(steps: dict[str, Step], fail) -> list[str]:
    """Steps in file order, each after everything it needs; a cycle is reported as a path."""
    order, state = [], {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise fail(trail[trail.index(name):] + [name])
        state[name] = "visiting"
        for need in steps[name].needs:
            visit(need, trail + [name])
        state[name] = "done"
        order.append(name)

    for name in steps:
        visit(name, [])
    return order


def _check_config(step: Step, parameters: dict, fail) -> None:
    """train.ipynb and tune.ipynb build a RunConfig: check its literal values now, not an hour in."""
    from workbench.config import ConfigError
    from workbench.tasks.configure import make_config

    values = known_now(step.parameters, parameters)
    if step.notebook == (NOTEBOOKS_DIR / "train.ipynb").resolve():
        # every other parameter of train.ipynb is a field or an option of the run's task and model
        config, where = {k: v for k, v in values.items() if k != "run_id"}, "parameters."
    elif step.notebook == (NOTEBOOKS_DIR / "tune.ipynb").resolve():
        from workbench.tuning import PRUNERS, SAMPLERS

        for key, allowed in (("sampler", SAMPLERS), ("pruner", PRUNERS)):
            if key in values and values[key] is not DEFERRED and values[key] not in allowed:
                raise fail(f"parameters.{key}: {values[key]!r}; allowed: {', '.join(allowed)}")
        config, where = values.get("config"), "parameters.config."
        if not isinstance(config, dict):
            return
    else:
        return
    if any(config.get(k) is DEFERRED for k in ("task", "dataset", "model")):
        return  # which values are valid depends on the task, known only at run time
    try:
        make_config({k: v for k, v in config.items() if v is not DEFERRED})
    except ConfigError as exc:
        raise fail(f"{where}{exc.field}: {exc}") from None

