"""The JupyterLab launcher: pick a run configuration with widgets, preview the data, train in the
background and watch it in MLflow.

    from workbench.lab.launcher import Launcher
    Launcher()

The controls are built from `RunConfig`'s fields (their types, defaults and help) and from the
registered tasks (their datasets, models and losses), so a new field or task shows up without
touching the notebook. A run never trains inside the notebook's kernel: `Start` hands it to a
`TrainingProcess` (`workbench train` in a process of its own, logging into a run created first);
the launcher polls the run's per-epoch metrics for the progress bar and the curves, and `Stop`
ends it cleanly.
"""

from __future__ import annotations

import io
import threading
import time
from typing import Any

from workbench.config import ConfigError, RunConfig
from workbench.lab.controls import (MAIN_FIELDS, OTHER_DATASET, POLL_SECONDS, build_controls, control_for,
                                    declared, task_choices, widgets_box)
from workbench.lab.training_process import FollowedRun, TrainingProcess, WatchedRun
from workbench.tasks import get_task
from workbench.tasks.configure import make_config

class Launcher:
    """Widgets to configure, preview, start, watch and stop one training run at a time.

    The methods the buttons call (`preview`, `start`, `stop`) work from Python too, and
    `set(epochs=1, ...)` sets controls by field name."""

    def __init__(self, task: str | None = None, poll_seconds: float = POLL_SECONDS):
        import ipywidgets as widgets

        self.poll_seconds = poll_seconds
        self.controls = build_controls(task)
        self.current: WatchedRun | None = None
        self._watcher: threading.Thread | None = None
        self._lock = threading.Lock()
        self._shown_epochs = -1

        self.preview_button = widgets.Button(description="Preview data", icon="image")
        self.start_button = widgets.Button(description="Start", button_style="success", icon="play")
        self.stop_button = widgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.follow_id = widgets.Text(placeholder="any run id: from workbench train, a pipeline step, a trial",
                                      description="follow run", style={"description_width": "130px"},
                                      layout=widgets.Layout(width="420px"))
        self.follow_button = widgets.Button(description="Follow", icon="eye")
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
        self.follow_button.on_click(lambda _: self._report(lambda: self.follow(self.follow_id.value.strip())))
        self.controls["task"].observe(self._task_changed, names="value")
        self.controls["model"].observe(self._model_changed, names="value")
        self.widget = self._layout()

    # ---- configuration ---------------------------------------------------------------------

    def set(self, **values: Any) -> "Launcher":
        # The task first: choosing it resets the dataset, model and loss choices.
        for name, value in sorted(values.items(), key=lambda item: item[0] != "task"):
            if name not in self.controls:
                raise ConfigError(name, value, "a RunConfig field or an option of this task and model: "
                                  + ", ".join(n for n in self.controls if n != OTHER_DATASET))
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
        return make_config(self.values())

    def _task_changed(self, change) -> None:
        for name, choices in task_choices(change["new"]).items():
            control = self.controls[name]
            control.options = [(value or "(default)", value) for value in choices]
            control.value = choices[0]
        self._refresh_options()

    def _model_changed(self, change) -> None:
        """Pretrained models want much smaller steps: each model brings its default learning rate."""
        if change["new"]:
            task = get_task(self.controls["task"].value)
            self.controls["learning_rate"].value = task.default_learning_rate_for(change["new"])
        self._refresh_options()

    def _refresh_options(self) -> None:
        """Controls for exactly the options the chosen task and model declare."""
        wanted = declared(self.controls["task"].value, self.controls["model"].value)
        common = {*RunConfig.field_names(), OTHER_DATASET}
        for name in [n for n in self.controls if n not in common and n not in wanted]:
            del self.controls[name]
        for name, option in wanted.items():
            self.controls.setdefault(name, control_for(option))
        if hasattr(self, "advanced"):
            self.advanced.children = [widgets_box(self._other_controls())]

    def _other_controls(self) -> list:
        main = {*MAIN_FIELDS, OTHER_DATASET}
        return [control for name, control in self.controls.items() if name not in main]

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
        self._begin_watching("starting the notebook kernel", stoppable=True)
        return self.current

    def follow(self, run_id: str) -> FollowedRun:
        """Show the progress and curves of any run, live, whoever started it."""
        with self._lock:
            if self.current is not None and self.current.running:
                raise RuntimeError(f"run {self.current.run_id} is still being watched: stop it first")
            self.current = FollowedRun(run_id, poll_seconds=self.poll_seconds)
        self._begin_watching("following", stoppable=False)
        return self.current

    def _begin_watching(self, phase: str, stoppable: bool) -> None:
        self._shown_epochs = -1
        self.progress.max, self.progress.value = max(1, self.current.config.epochs), 0
        self.progress.bar_style = ""
        self.start_button.disabled, self.stop_button.disabled = True, not stoppable
        self.message.value = self._describe(phase)
        self._watcher = threading.Thread(target=self._watch, name=f"watch-{self.current.run_id}", daemon=True)
        self._watcher.start()

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
        from workbench.lab.compare import run_url

        run = self.current
        c = run.config
        elapsed = time.time() - run.started
        return (f"{c.task}/{c.dataset}/{c.model}: {phase} ({elapsed:.0f} s) &middot; run "
                f"<a href='{run_url(run.run_id)}' target='_blank'>{run.run_id[:8]}</a> "
                f"(<code>workbench ui</code>)" + (f" &middot; log <code>{_escape(str(run.log))}</code>" if run.log else ""))

    # ---- display ---------------------------------------------------------------------------

    def _layout(self):
        import ipywidgets as widgets

        main = [self.controls[name] for name in MAIN_FIELDS if name in self.controls]
        main.insert(main.index(self.controls["dataset"]) + 1, self.controls[OTHER_DATASET])
        advanced = widgets.Accordion(children=[widgets_box(self._other_controls())],
                                     titles=("All other settings (the task's and model's own options last)",))
        advanced.selected_index = None
        self.advanced = advanced
        # Two columns: what to train (choices) beside how long and how fast (numbers).
        choices = [c for c in main if isinstance(c, (widgets.Dropdown, widgets.Text))]
        numbers = [c for c in main if c not in choices]
        buttons = widgets.HBox([self.preview_button, self.start_button, self.stop_button])
        follow = widgets.HBox([self.follow_id, self.follow_button])
        return widgets.VBox([widgets.HTML("<h3>Train a model</h3>"),
                             widgets.HBox([widgets.VBox(choices), widgets.VBox(numbers)]), advanced, buttons,
                             follow, self.progress, self.message, self.curves_image, self.preview_output])

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
