"""One MLflow tree per study: a parent run holding the study's settings, best result and
figures; one child run per trial (created by the trial itself through `workbench.train`).
Re-running a study reopens the same parent. The runs are written by `workbench.tracking.studies`;
here the Optuna study becomes what its parent run logs."""

from __future__ import annotations

import optuna

from workbench.tracking import studies
# tune() and the CLI's `tune` take these from here
from workbench.tracking.studies import fail_children, find_parent, open_parent  # noqa: F401


def close_parent(run_id: str, study: optuna.Study, direction_metric: str, error: str | None = None) -> dict:
    """Log counts, the best trial and the Optuna figures; end the parent run."""
    trials = study.get_trials(deepcopy=False)
    states = {s: sum(t.state.name == s and not t.user_attrs.get("surplus") for t in trials)
              for s in ("COMPLETE", "PRUNED", "FAIL")}
    metrics = {f"trials_{s.lower()}": float(n) for s, n in states.items()}
    best_params, figures = None, {}
    if states["COMPLETE"]:
        best = study.best_trial
        metrics[f"best_{direction_metric}"] = float(best.value)
        metrics["best_trial"] = float(best.number)
        best_params, figures = best.params, study_figures(study)
    studies.end_parent(run_id, metrics, best_params, figures, error)
    return figures


def study_figures(study: optuna.Study) -> dict:
    """Optimization history, parameter importances, parallel coordinates, learning curves."""
    import warnings

    from optuna.visualization import matplotlib as plots

    figures = {}
    makers = {"optimization_history": plots.plot_optimization_history,
              "parallel_coordinate": plots.plot_parallel_coordinate,
              "intermediate_values": plots.plot_intermediate_values,
              "param_importances": plots.plot_param_importances}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the matplotlib backend is marked experimental
        for name, make in makers.items():
            try:
                axes = make(study)
            except (ValueError, RuntimeError, ZeroDivisionError):  # e.g. importances of one trial
                continue
            axes = axes.ravel()[0] if hasattr(axes, "ravel") else axes
            figure = axes.figure
            figure.set_size_inches(9, 5)
            figure.tight_layout()
            figures[name] = figure
    return figures
