"""The JupyterLab launcher: pick a run configuration with widgets, preview the data, train in the
background and watch it in MLflow.

    from workbench.explore import Launcher
    Launcher()

The controls are built from `RunConfig`'s fields (their types, defaults and help) and from the
registered tasks (their datasets, models and losses), so a new field or task shows up without
touching the notebook. A run never trains inside the notebook's kernel: `Start` creates the MLflow
run, then starts `workbench train` (the papermill path) in a process group of its own that logs
into that run; the launcher polls the run's per-epoch metrics for the progress bar and the
curves. `Stop` interrupts that process (which ends the run KILLED), kills whatever is left of it
(the notebook kernel runs in a session of its own), and ends the run itself if it is still RUNNING.
"""

from __future__ import annotations

import dataclasses
import io
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from workbench import config as config_module
from workbench.config import ConfigError, RunConfig
from workbench.tasks import get_task, task_names

# Fields with a fixed set of values; `task`, `dataset`, `model` and `loss` come from the tasks.
CHOICES = {
    "optimizer": config_module.OPTIMIZERS,
    "activation": config_module.ACTIVATIONS,
    "lr_schedule": config_module.SCHEDULES,
    "strategy": config_module.STRATEGIES,
    "precision": config_module.PRECISIONS,
}
# Numeric fields worth a slider: (min, max, step); every other number gets a plain number box.
SLIDERS = {
    "epochs": (0, 200, 1),  # 0 = the task's default
    "batch_size": (8, 512, 8),
    "dropout": (0.0, 0.9, 0.05),
    "momentum": (0.0, 0.99, 0.01),
    "validation_split": (0.05, 0.5, 0.05),
    "patience": (0, 20, 1),
}
LOG_SLIDERS = {"learning_rate": (-5, 0)}  # powers of ten
MAIN_FIELDS = ("task", "dataset", "model", "epochs", "batch_size", "optimizer", "learning_rate", "activation",
               "loss", "dropout", "l2", "seed")
OTHER_DATASET = "dataset_path"  # free text beside the dataset dropdown, for folder:PATH and csv:PATH
STOPPED_REASON = "stopped from the launcher"
POLL_SECONDS = 2.0
INTERRUPT_GRACE_SECONDS = 60  # time `workbench train` gets to attach the notebook and end the run


def _kind(field: dataclasses.Field) -> type:
    """A field's type, also when annotations are strings (`from __future__ import annotations`)."""
    return {"int": int, "float": float, "str": str, "bool": bool}.get(field.type, field.type)


def task_choices(task_name: str) -> dict[str, tuple[str, ...]]:
    """The values the task-dependent dropdowns offer, each task default first."""
    task = get_task(task_name)
    first = lambda default, values: (default, *[v for v in values if v != default])  # noqa: E731
    return {
        "dataset": first(task.default_dataset, task.datasets),
        "model": first(task.default_model, task.models),
        "loss": ("",) + tuple(task.losses),  # "" = the model's default loss
    }


def control_for(field: dataclasses.Field, choices: tuple | None = None):
    """One widget for one config field: a dropdown for a fixed set of values, a slider for the
    numbers in SLIDERS, a checkbox for booleans, a number or text box otherwise. The field's
    help text is the tooltip."""
    import ipywidgets as widgets

    kind = _kind(field)
    common = {"description": field.name, "tooltip": field.metadata.get("help", ""),
              "style": {"description_width": "130px"}, "layout": widgets.Layout(width="420px")}
    default = field.default
    if choices is not None:
        options = [(value or "(default)", value) for value in choices]
        return widgets.Dropdown(options=options, value=default if default in choices else choices[0], **common)
    if kind is bool:
        return widgets.Checkbox(value=bool(default), indent=True, **common)
    if field.name in LOG_SLIDERS:
        low, high = LOG_SLIDERS[field.name]
        return widgets.FloatLogSlider(value=default, base=10, min=low, max=high, step=0.1, readout_format=".1e",
                                      **common)
    if field.name in SLIDERS:
        low, high, step = SLIDERS[field.name]
        slider = widgets.IntSlider if kind is int else widgets.FloatSlider
        return slider(value=default, min=low, max=high, step=step, **common)
    if kind is int:
        return widgets.IntText(value=default, **common)
    if kind is float:
        return widgets.FloatText(value=default, **common)
    return widgets.Text(value=str(default), placeholder=field.metadata.get("help", ""), **common)


def build_controls(task_name: str | None = None) -> dict[str, Any]:
    """A widget for every RunConfig field, plus the free-text dataset path."""
    import ipywidgets as widgets

    task_name = task_name or RunConfig().task
    per_task = task_choices(task_name)
    controls = {}
    for field in dataclasses.fields(RunConfig):
        if field.name == "task":
            choices = tuple(task_names())
        else:
            choices = per_task.get(field.name) or CHOICES.get(field.name)
        controls[field.name] = control_for(field, choices)
    controls["task"].value = task_name
    # A log slider cannot show "0 = the model's default": it shows that default's value instead.
    controls["learning_rate"].value = get_task(task_name).default_learning_rate_for(controls["model"].value)
    controls[OTHER_DATASET] = widgets.Text(
        value="", description="other dataset", placeholder="e.g. folder:PATH (overrides the dropdown)",
        tooltip="a dataset given by path, for tasks that read folders or files",
        style={"description_width": "130px"}, layout=widgets.Layout(width="420px"))
    return controls


class TrainingProcess:
    """A `workbench train` process logging into an MLflow run created before it starts."""

    def __init__(self, config: RunConfig):
        from workbench import tracking
        from workbench.home import home, subdir

        self.config = config
        self.stop_requested = False
        self.run_id = tracking.create_run(config)
        self.log = subdir("launcher") / f"train-{self.run_id}.log"
        self.command = [sys.executable, "-m", "workbench", "train", *config_flags(config)]
        # The child must log into the same store this process reads, whatever its working directory.
        env = {**os.environ, "MLFLOW_RUN_ID": self.run_id, "WORKBENCH_HOME": str(home())}
        try:
            with open(self.log, "wb") as log:
                # A session of its own: interrupting the notebook's kernel leaves the run alone, and
                # stop() can signal the whole group.
                self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                                start_new_session=True)
        except OSError as exc:  # the run exists already: it must not stay RUNNING
            tracking.end_run(self.run_id, error=f"could not start `workbench train`: {exc}")
            raise
        self.started = time.time()

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def status(self) -> str:
        from workbench import tracking

        return tracking.run_status(self.run_id)

    def epochs_done(self) -> int:
        """Epochs whose metrics reached MLflow (the epoch callback logs `epoch_seconds` at each end)."""
        from workbench import tracking

        return len({p.step for p in tracking.client().get_metric_history(self.run_id, "epoch_seconds")})

    def planned_epochs(self) -> int:
        """The run's epochs: as configured, or as the run chose from the data (0 until it has)."""
        if self.config.epochs:
            return self.config.epochs
        from workbench import tracking

        return int(tracking.client().get_run(self.run_id).data.params.get("epochs", 0))

    def curves(self) -> dict[str, list[float]]:
        """Per-epoch values of every validation metric (`val_loss`, `val_accuracy`, ...) and of its
        training twin where there is one."""
        from workbench import tracking

        logger = tracking.RunLogger(self.run_id)
        latest = logger.client.get_run(self.run_id).data.metrics
        names = sorted(k.removeprefix("val_") for k in latest if k.startswith("val_") and k != "val_examples")
        keys = [key for name in names for key in (name, f"val_{name}") if key in latest]
        return logger.metric_history(keys)

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def wait(self, timeout: float | None = None) -> str:
        """Wait for the process to end; then make sure the run is closed. Returns the run's status."""
        self.process.wait(timeout)
        if self.stop_requested:
            return self._close_run(STOPPED_REASON, status="KILLED")
        return self._close_run(f"training process exited with code {self.process.returncode}: "
                               + self.log_tail(5))

    def stop(self, grace: float = INTERRUPT_GRACE_SECONDS) -> str:
        """End the run cleanly: interrupt `workbench train` (it attaches the executed notebook and
        ends the run KILLED), kill what is left of its process tree, and close the run if the
        process could not. Returns the run's final status."""
        import psutil

        from workbench.procs import kill_tree

        from workbench import tracking

        self.stop_requested = True
        try:
            family = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        if self.running:
            os.kill(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        if self.running:
            kill_tree(self.process)
        for member in family:  # the notebook kernel, in a session of its own
            try:
                member.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(family, timeout=10)
        status = self._close_run(STOPPED_REASON, status="KILLED")
        if status == "KILLED":  # the kernel tags its interruption generically; say who stopped it
            tracking.client().set_tag(self.run_id, tracking.ERROR_TAG, STOPPED_REASON)
        return status

    def _close_run(self, reason: str, status: str = "FAILED") -> str:
        from workbench import tracking

        if tracking.run_status(self.run_id) == "RUNNING":
            tracking.end_run(self.run_id, error=reason, status=status)
        return tracking.run_status(self.run_id)


def config_flags(config: RunConfig) -> list[str]:
    """`workbench train` flags: the task, and the fields that differ from that task's defaults."""
    defaults = RunConfig.from_dict(task=config.task)
    flags = ["--task", config.task]
    for field in dataclasses.fields(RunConfig):
        value = getattr(config, field.name)
        if value != getattr(defaults, field.name):
            flags += [f"--{field.name.replace('_', '-')}", str(value)]
    return flags


class Launcher:
    """Widgets to configure, preview, start, watch and stop one training run at a time.

    The methods the buttons call (`preview`, `start`, `stop`) work from Python too, and
    `set(epochs=1, ...)` sets controls by field name."""

    def __init__(self, task: str | None = None, poll_seconds: float = POLL_SECONDS):
        import ipywidgets as widgets

        self.poll_seconds = poll_seconds
        self.controls = build_controls(task)
        self.current: TrainingProcess | None = None
        self._watcher: threading.Thread | None = None
        self._lock = threading.Lock()
        self._shown_epochs = -1

        self.preview_button = widgets.Button(description="Preview data", icon="image")
        self.start_button = widgets.Button(description="Start", button_style="success", icon="play")
        self.stop_button = widgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="epochs",
                                            layout=widgets.Layout(width="420px"))
        self.message = widgets.HTML(value="Choose a configuration, then Start.")
        self.message.add_class("workbench-launcher-status")  # a handle for browser tests and styling
        # Hidden until the first epoch: an empty image shows as a broken picture.
        self.curves_image = widgets.Image(format="png", layout=widgets.Layout(max_width="900px", display="none"))
        self.preview_output = widgets.Output()
        self.preview_button.on_click(lambda _: self.preview())
        self.start_button.on_click(lambda _: self._report(self.start))
        self.stop_button.on_click(lambda _: self._report(self.stop))
        self.controls["task"].observe(self._task_changed, names="value")
        self.controls["model"].observe(self._model_changed, names="value")
        self.widget = self._layout()

    # ---- configuration ---------------------------------------------------------------------

    def set(self, **values: Any) -> "Launcher":
        # The task first: choosing it resets the dataset, model and loss choices.
        for name, value in sorted(values.items(), key=lambda item: item[0] != "task"):
            if name not in self.controls:
                raise ConfigError(name, value, "a RunConfig field: " + ", ".join(RunConfig.field_names()))
            control = self.controls[name]
            options = [v for _, v in getattr(control, "options", ())]
            if options and value not in options:
                raise ConfigError(name, value, ", ".join(repr(v) for v in options))
            control.value = value
        return self

    def values(self) -> dict[str, Any]:
        """The controls as RunConfig values (the dataset path, when given, replaces the dropdown)."""
        values = {name: control.value for name, control in self.controls.items() if name != OTHER_DATASET}
        if self.controls[OTHER_DATASET].value.strip():
            values["dataset"] = self.controls[OTHER_DATASET].value.strip()
        return values

    def config(self) -> RunConfig:
        """The validated config; raises ConfigError naming the field and what is allowed."""
        return RunConfig.from_dict(self.values())

    def _task_changed(self, change) -> None:
        for name, choices in task_choices(change["new"]).items():
            control = self.controls[name]
            control.options = [(value or "(default)", value) for value in choices]
            control.value = choices[0]

    def _model_changed(self, change) -> None:
        """Pretrained models want much smaller steps: each model brings its default learning rate."""
        if change["new"]:
            task = get_task(self.controls["task"].value)
            self.controls["learning_rate"].value = task.default_learning_rate_for(change["new"])

    # ---- actions ---------------------------------------------------------------------------

    def preview(self) -> list:
        """Load the data and show the task's preview (image grid, texts, spectrograms, ...)."""
        # The Output widget's own API (not its context manager) also works outside a kernel.
        out = self.preview_output
        out.outputs = ()
        try:
            config = self.config()
            data = get_task(config.task).load_data(config)
        except Exception as exc:  # a bad value or unusable data: say so where the user looks
            out.append_stdout(f"{type(exc).__name__}: {exc}\n")
            return []
        out.append_stdout(f"{data.name} from {data.source}: {data.sizes()}, classes: {data.class_names}\n")
        items = [_displayable(item) for item in get_task(config.task).preview(data)]
        for item in items:
            out.append_display_data(item)
        return items

    def start(self) -> TrainingProcess:
        """Validate the config, create the run, start `workbench train` and watch it."""
        with self._lock:
            if self.current is not None and self.current.running:
                raise RuntimeError(f"run {self.current.run_id} is still training: stop it first")
            config = self.config()
            self.current = TrainingProcess(config)
            self._shown_epochs = -1
        self.progress.max, self.progress.value = max(1, config.epochs), 0
        self.progress.bar_style = ""
        self.start_button.disabled, self.stop_button.disabled = True, False
        self.message.value = self._describe("starting the notebook kernel")
        self._watcher = threading.Thread(target=self._watch, name=f"watch-{self.current.run_id}", daemon=True)
        self._watcher.start()
        return self.current

    def stop(self) -> str:
        """End the current run cleanly (KILLED with a reason); returns its final status."""
        run = self.current
        if run is None:
            raise RuntimeError("no run was started")
        self.message.value = self._describe("stopping")
        status = run.stop()
        self.wait()
        return status

    def wait(self, timeout: float | None = None) -> str:
        """Block until the current run's process has ended and the display is final; its status."""
        if self._watcher is not None:
            self._watcher.join(timeout)
            if self._watcher.is_alive():
                raise TimeoutError(f"run {self.current.run_id} still training after {timeout} s")
        return self.current.status()

    def _report(self, action) -> None:
        try:
            action()
        except Exception as exc:  # a button has nowhere else to report to
            self.message.value = f"<b style='color:#b00'>{_escape(str(exc))}</b>"

    # ---- watching --------------------------------------------------------------------------

    def _watch(self) -> None:
        run = self.current
        try:
            while run.running:
                self.poll()
                time.sleep(self.poll_seconds)
            try:
                status = run.wait()
            except Exception as exc:  # the store may be unreachable; the display must still end
                status = f"unknown ({exc})"
            self.poll(final_status=status)
        finally:
            self.start_button.disabled, self.stop_button.disabled = False, True

    def poll(self, final_status: str | None = None) -> None:
        """Update the progress bar, the message and (on a new epoch) the curves from MLflow."""
        run = self.current
        try:
            done = run.epochs_done()
            curves = run.curves() if done != self._shown_epochs else None
        except Exception as exc:  # a transient store error must not kill the watcher
            self.message.value = self._describe(f"could not read the run: {exc}")
            return
        self.progress.max = max(1, run.planned_epochs())
        self.progress.value = min(done, self.progress.max)
        if curves:
            self.curves_image.value = _curves_png(curves, run.planned_epochs())
            self.curves_image.layout.display = None
        self._shown_epochs = done
        if final_status is None:
            planned = run.planned_epochs()
            phase = f"epoch {done} of {planned} done" if done else "loading data and building the model"
            if planned and done >= planned:
                phase = "evaluating on the test split and logging"
            self.message.value = self._describe(phase)
            return
        self.progress.bar_style = "success" if final_status == "FINISHED" else "danger"
        details = ""
        if final_status != "FINISHED":
            from workbench import tracking

            error = tracking.client().get_run(run.run_id).data.tags.get(tracking.ERROR_TAG, "")
            details = f"<br><code>{_escape(error[:500])}</code>"
        self.message.value = self._describe(f"<b>{final_status}</b>") + details

    def _describe(self, phase: str) -> str:
        from workbench.compare import run_url

        run = self.current
        c = run.config
        elapsed = time.time() - run.started
        return (f"{c.task}/{c.dataset}/{c.model}: {phase} ({elapsed:.0f} s) &middot; run "
                f"<a href='{run_url(run.run_id)}' target='_blank'>{run.run_id[:8]}</a> "
                f"(<code>workbench ui</code>) &middot; log <code>{_escape(str(run.log))}</code>")

    # ---- display ---------------------------------------------------------------------------

    def _layout(self):
        import ipywidgets as widgets

        main = [self.controls[name] for name in MAIN_FIELDS if name in self.controls]
        main.insert(main.index(self.controls["dataset"]) + 1, self.controls[OTHER_DATASET])
        others = [control for name, control in self.controls.items() if control not in main]
        advanced = widgets.Accordion(children=[widgets.VBox(others)], titles=("All other settings",))
        advanced.selected_index = None
        # Two columns: what to train (choices) beside how long and how fast (numbers).
        choices = [c for c in main if isinstance(c, (widgets.Dropdown, widgets.Text))]
        numbers = [c for c in main if c not in choices]
        buttons = widgets.HBox([self.preview_button, self.start_button, self.stop_button])
        return widgets.VBox([widgets.HTML("<h3>Train a model</h3>"),
                             widgets.HBox([widgets.VBox(choices), widgets.VBox(numbers)]), advanced, buttons,
                             self.progress, self.message, self.curves_image, self.preview_output])

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def _displayable(item):
    """Matplotlib figures as PNG images (they display without any matplotlib backend); the rest as is."""
    from matplotlib.figure import Figure

    if isinstance(item, Figure):
        from IPython.display import Image

        return Image(_png(item))
    return item


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def _curves_png(curves: dict[str, list[float]], epochs: int) -> bytes:
    """Training and validation curves side by side, one panel per metric."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    names = list(dict.fromkeys(k.removeprefix("val_") for k in curves))
    fig = Figure(figsize=(4.2 * max(1, len(names)), 3), layout="constrained")
    axes = fig.subplots(1, max(1, len(names)), squeeze=False)[0]
    for ax, name in zip(axes, names):
        for key, style in ((name, "-o"), (f"val_{name}", "--o")):
            values = curves.get(key) or []
            ax.plot(range(1, len(values) + 1), values, style, label=key, markersize=3)
        ax.set(title=name, xlabel="epoch", xlim=(0.5, max(epochs, 1) + 0.5))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.legend(fontsize=8)
    return _png(fig)


def _escape(text: str) -> str:
    import html

    return html.escape(text)
