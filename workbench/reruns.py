"""Re-run a run from its record, and say whether it reproduces.

    workbench rerun RUN_ID                      # the same configuration, trained again
    workbench rerun RUN_ID --set epochs=3       # a variant: the record with one field changed

The configuration comes from the run's params. The new run names its origin (tag
`workbench.rerun_of`) and the origin lists its re-runs (`workbench.reruns`). After training,
what could make the numbers differ is compared with the record: the code version (git commit
and dirty flag), library versions, devices and the logged datasets' digests; then every test
and baseline metric is checked: equal (training is deterministic here: seeded, with op
determinism), within the tolerance, or different.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workbench.config import RunConfig
from workbench.errors import ConfigError
from workbench.tasks.configure import config_from_params, make_config

RERUN_OF_TAG = "workbench.rerun_of"
RERUNS_TAG = "workbench.reruns"
DEFAULT_TOLERANCE = 1e-6
KEY_METRICS = ("test_accuracy", "test_loss", "test_mae", "test_frechet", "baseline_test", "best_")  # always shown


@dataclass
class Rerun:
    original: str
    run_id: str
    config: RunConfig
    changed: dict[str, tuple[str, str]]             # --set: field -> (recorded, now)
    environment: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    datasets: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    metrics: list[tuple[str, float, float | None, str]] = field(default_factory=list)  # name, was, now, verdict

    @property
    def reproduced(self) -> bool:
        return bool(self.metrics) and all(verdict != "differs" for *_, verdict in self.metrics)

    def report(self) -> str:
        lines = [f"rerun {self.run_id} of {self.original}"]
        lines += [f"  set          {k}: {a} -> {b}" for k, (a, b) in self.changed.items()]
        lines += [f"  environment  {k}: recorded {a}, now {b}" for k, a, b in self.environment] or \
            ["  environment  the same code version, libraries and devices as recorded"]
        lines += [f"  data         {k}: digest recorded {a}, now {b}" for k, a, b in self.datasets] or \
            ["  data         the same dataset digests as recorded"]
        exact = [m for m in self.metrics if m[3] == "exact"]
        for name, was, now, verdict in self.metrics:
            if verdict != "exact" or name.startswith(KEY_METRICS):
                lines.append(f"  {verdict:<12} {name}: recorded {was:.6g}, now "
                             + ("absent" if now is None else f"{now:.6g}"))
        lines.append(f"  metrics      {len(exact)} of {len(self.metrics)} test and baseline metrics equal exactly")
        if self.changed:
            lines.append("  a variant (--set), so differences are expected")
        else:
            lines.append("  REPRODUCED: every test and baseline metric matches" if self.reproduced else
                         "  NOT REPRODUCED: see the metrics that differ, and the differences named above")
        return "\n".join(lines)


def parse_assignments(assignments: list[str]) -> dict[str, str]:
    values = {}
    for text in assignments:
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            raise ConfigError("set", text, "FIELD=VALUE, e.g. --set epochs=3")
        values[name.strip()] = value
    return values


def rerun_config(run_id: str, changes: dict[str, str]) -> tuple[RunConfig, dict[str, tuple[str, str]]]:
    """The recorded configuration with `changes` applied, checked; and what changed."""
    from workbench.tracking import queries

    params = queries.existing_run_params(run_id, "run")
    recorded = config_from_params(params)
    config = make_config(recorded.to_dict(), **changes) if changes else recorded
    changed = {k: (str(recorded.to_dict().get(k)), str(v)) for k, v in config.to_dict().items()
               if recorded.to_dict().get(k) != v}
    return config, changed


def compare_with_record(original: str, run_id: str, config: RunConfig, changed: dict,
                        tolerance: float = DEFAULT_TOLERANCE) -> Rerun:
    from workbench.lab.diff import ENVIRONMENT_TAGS
    from workbench.tracking import queries

    was, now = queries.get_run(original), queries.get_run(run_id)
    result = Rerun(original, run_id, config, changed)
    result.environment = [(k, was.data.tags.get(k), now.data.tags.get(k)) for k in ENVIRONMENT_TAGS
                          if k != "host" and was.data.tags.get(k) != now.data.tags.get(k)]
    digests_was, digests_now = queries.dataset_digests(original), queries.dataset_digests(run_id)
    result.datasets = [(k, digests_was.get(k), digests_now.get(k)) for k in sorted(set(digests_was) | set(digests_now))
                       if digests_was.get(k) != digests_now.get(k)]
    for name in sorted(was.data.metrics):
        if not name.startswith(("test_", "baseline_", "best_")):
            continue
        recorded, value = was.data.metrics[name], now.data.metrics.get(name)
        verdict = "differs" if value is None else "exact" if value == recorded else \
            "within" if abs(value - recorded) <= tolerance else "differs"
        result.metrics.append((name, recorded, value, verdict))
    return result


def link(original: str, run_id: str) -> None:
    """Tags in both directions: the re-run names its origin, the origin lists its re-runs."""
    from workbench.tracking import run_tree

    _append_to_list_tag(original, RERUNS_TAG, run_id)
    run_tree.set_tags(run_id, {RERUN_OF_TAG: original})


def _append_to_list_tag(run_id: str, tag: str, value: str) -> None:
    """A comma-separated list tag (re-runs, forks of a run) with one more entry."""
    from workbench.tracking import queries, run_tree

    entries = [r for r in queries.get_run(run_id).data.tags.get(tag, "").split(",") if r]
    run_tree.set_tags(run_id, {tag: ",".join([*entries, value])})


FORKS_TAG = "workbench.forks"


def fork_point(origin: str, config: RunConfig, epoch: int):
    """Where a fork of `origin` at `epoch` starts; ConfigError when that epoch has no checkpoint."""
    from workbench.home import epoch_checkpoints
    from workbench.runs import Fork
    from workbench.training import epoch_checkpoint

    kept = sorted(int(p.stem.split("-")[1]) for p in epoch_checkpoints(origin).glob("epoch-*.keras"))
    if epoch not in kept or epoch >= config.epochs:
        usable = [k for k in kept if k < config.epochs]
        raise ConfigError("from_epoch", epoch, f"an epoch of run {origin} with a checkpoint, before its last "
                          f"({config.epochs}): " + (", ".join(map(str, usable)) if usable else
                                                    "none kept (trained with epoch_checkpoints off, or elsewhere)"))
    return Fork(origin, epoch, str(epoch_checkpoint(epoch_checkpoints(origin), epoch)))


def link_fork(origin: str, run_id: str) -> None:
    """The origin lists its forks (the fork's own tags name the origin and epoch)."""
    _append_to_list_tag(origin, FORKS_TAG, run_id)
