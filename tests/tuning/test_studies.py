"""Tuning: real Optuna studies on digits, pruning, parallel workers, PostgreSQL, dead workers, MLflow tree."""

import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from conftest import ROOT, all_runs, client, run_cli
from workbench.tasks.configure import make_config
from workbench.tuning import tune

pytestmark = pytest.mark.slow
QUICK = {"task": "images", "dataset": "digits", "model": "mlp", "epochs": 4}


def children(home, parent_run_id):
    c = client(home)
    experiment = c.get_run(parent_run_id).info.experiment_id
    return c.search_runs([experiment], f"tags.mlflow.parentRunId = '{parent_run_id}'")


def finished(study):
    return [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]


def load(name, storage=None):
    from workbench.tuning.storage import open_storage

    return optuna.load_study(study_name=name, storage=open_storage(storage))


def test_study_with_pruning_logs_one_mlflow_tree(home):
    result = tune(**QUICK, trials=10, study="pruning", progress=False)
    assert result.counts["complete"] >= 1 and result.counts["pruned"] >= 1, result.counts
    c = client(home)
    parent = c.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["sampler"] == "tpe" and parent.data.params["pruner"] == "hyperband"
    assert parent.data.params["storage_kind"] == "journal"
    assert parent.data.metrics["trials_pruned"] == result.counts["pruned"]
    assert "figures/optimization_history.png" in {a.path for a in c.list_artifacts(parent.info.run_id, "figures")}
    runs = children(home, result.parent_run_id)
    assert len(runs) == 10
    study = load("pruning")
    for run in runs:
        trial = study.trials[int(run.data.tags["optuna.trial"])]
        history = {p.step: p.value for p in c.get_metric_history(run.info.run_id, "val_accuracy")}
        assert history == {step: pytest.approx(v) for step, v in trial.intermediate_values.items()}
        assert run.info.status == "FINISHED"
        if trial.state == TrialState.PRUNED:  # stopped at the epoch the pruner said so
            assert run.data.tags.get("pruned") == "true" and run.data.tags["stopped"] == "TrialPruned"
        else:
            assert len(history) == 4 and "pruned" not in run.data.tags
        assert run.data.params["learning_rate"] == str(make_config(QUICK, **trial.params).learning_rate)


def test_rerun_continues_to_the_requested_total_in_the_same_parent(home):
    first = tune(**QUICK, trials=2, study="again", pruner="none", progress=False)
    second = tune(**QUICK, trials=4, study="again", pruner="none", progress=False)
    assert second.parent_run_id == first.parent_run_id
    assert len(finished(load("again"))) == 4
    assert len(children(home, first.parent_run_id)) == 4
    # The continued study proposes new configurations, not its seeded sampler's first ones again.
    proposals = [tuple(sorted(t.params.items())) for t in finished(load("again"))]
    assert len(set(proposals)) == 4, proposals


def test_two_worker_processes_on_one_journal_finish_exactly_the_total(home):
    result = tune(**QUICK, trials=5, study="pair", workers=2, progress=False)
    study = load("pair")
    assert len(finished(study)) == 5
    workers = {t.user_attrs["worker"] for t in finished(study)}
    assert len(workers) == 2, "both processes took trials"
    assert len([r for r in children(home, result.parent_run_id) if r.info.status == "FINISHED"]) == 5
    if len(os.sched_getaffinity(0)) >= 2:  # each worker pinned to its own share of the cores
        cores = {t.user_attrs["worker"]: frozenset(t.user_attrs["cores"]) for t in finished(study)}
        first, second = cores.values()
        assert first and second and not first & second, cores


def test_two_workers_share_a_study_on_postgresql(home, postgres_server):
    url = postgres_server("optuna_pair")
    result = tune(**QUICK, trials=4, study="pg", storage=url, workers=2, progress=False)
    study = load("pg", url)
    assert len(finished(study)) == 4
    parent = client(home).get_run(result.parent_run_id)
    assert parent.data.params["storage_kind"] == "postgresql"
    user, host = url.removeprefix("postgresql://").split("@")
    assert parent.data.tags["optuna.storage"] == f"postgresql://{user}:***@{host}"  # the password masked


def test_a_killed_worker_trial_is_failed_and_retried(home):
    flags = ["tune", "--in-process", "--task", "images", "--dataset", "digits", "--model", "resnet",
             "--batch-size", "16", "--epochs", "3", "--trials", "2", "--study", "killed", "--pruner", "none"]
    process = subprocess.Popen([sys.executable, "-m", "workbench", *flags], cwd=ROOT, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    deadline = time.time() + 300
    try:
        while time.time() < deadline:
            assert process.poll() is None, "the study ended before the kill"
            try:
                running = [t for t in load("killed").trials if t.state == TrialState.RUNNING and t.params]
            except KeyError:
                running = []
            if running and _trial_runs(home, running[0].number):  # its MLflow run exists: killed mid-epoch
                break
            time.sleep(0.3)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    (dead,) = [t for t in load("killed").trials if t.state == TrialState.RUNNING]

    result = run_cli(*flags)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"trials [{dead.number}] belonged to workers that died" in result.stdout
    study = load("killed")
    assert study.trials[dead.number].state == TrialState.FAIL
    retries = [t for t in study.trials if t.user_attrs.get("retry_of") == dead.number]
    assert len(retries) == 1 and retries[0].params == dead.params and retries[0].state == TrialState.COMPLETE
    assert len(finished(study)) == 2
    statuses = {r.data.tags["optuna.trial"]: r.info.status
                for r in children(home, client(home).search_runs(
                    [client(home).get_experiment_by_name("workbench-images").experiment_id],
                    "tags.kind = 'study'")[0].info.run_id)}
    assert statuses[str(dead.number)] == "FAILED"  # never left RUNNING


def _trial_runs(home, number: int) -> list:
    if not (home / "mlflow.db").exists():
        return []
    experiment = client(home).get_experiment_by_name("workbench-images")
    return client(home).search_runs([experiment.experiment_id], f"tags.`optuna.trial` = '{number}'") if experiment else []


def test_cli_rejects_a_bad_search_space_before_any_trial(home, tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("dropout: {type: float, low: 0.9, high: 1.5}")
    result = run_cli("tune", "--dataset", "digits", "--search-space", str(path))
    assert result.returncode == 2 and "dropout" in result.stderr and "[0, 1)" in result.stderr
    assert not (home / "optuna").exists() or not list((home / "optuna").iterdir())


def test_pruning_callback_fails_loudly_when_the_metric_is_missing():
    import numpy as np

    from workbench.tuning.pruning import MissingMetricError, PruningCallback

    study = optuna.create_study()
    callback = PruningCallback(study.ask(), "val_accuracy")
    with pytest.raises(MissingMetricError, match="val_accuracy.*loss"):
        callback.on_epoch_end(0, {"loss": np.float32(0.3)})


def test_register_moves_the_champion_alias_only_on_improvement(home):
    first = tune(**QUICK, trials=2, study="reg", register="digits-mlp", progress=False)
    second = tune(**QUICK, trials=3, study="reg", register="digits-mlp", progress=False)
    c = client(home)
    versions = {str(v.version): float(v.tags["test_accuracy"])
                for v in c.search_model_versions("name='digits-mlp'")}
    assert set(versions) == {"1", "2"}
    champion = str(c.get_model_version_by_alias("digits-mlp", "champion").version)
    assert versions[champion] == max(versions.values())
    assert first.registration.champion and second.registration.champion == (versions["2"] > versions["1"])


def test_tune_command_runs_the_notebook_and_attaches_it(home):
    result = run_cli("tune", "--dataset", "digits", "--model", "mlp", "--epochs", "2", "--trials", "2",
                     "--study", "nb")
    assert result.returncode == 0, result.stderr[-2000:]
    parent = client(home).search_runs([client(home).get_experiment_by_name("workbench-images").experiment_id],
                                      "tags.kind = 'study'")[0]
    notebooks = {a.path for a in client(home).list_artifacts(parent.info.run_id, "notebook")}
    assert any(p.endswith(".ipynb") for p in notebooks) and any(p.endswith(".html") for p in notebooks)
    assert "best params" in result.stdout


def test_dashboard_serves_the_study_storage_on_loopback(home):
    import urllib.request

    from conftest import _free_port

    tune(**QUICK, trials=1, study="shown", pruner="none", progress=False)
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "workbench", "dashboard", "--port", str(port)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=os.environ.copy())
    try:
        deadline, body = time.time() + 60, ""
        while time.time() < deadline and not body:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2).read().decode()
            except OSError:
                time.sleep(0.5)
        assert '"study_name": "shown"' in body or '"study_name":"shown"' in body, body[:500]
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert run_cli("dashboard", "--host", "0.0.0.0").returncode == 2


def test_trials_over_seeds_score_the_group_mean_and_register_moves_only_on_significance(home):
    quick = {**QUICK, "epochs": 2}
    first = tune(**quick, trials=2, seeds=2, study="seeded", pruner="none", register="seeded-mlp", progress=False)
    study = load("seeded")
    c = client(home)
    for trial in finished(study):
        group = c.get_run(trial.user_attrs["mlflow_run_id"])
        assert group.data.tags["kind"] == "seed_group" and group.data.tags["optuna.trial"] == str(trial.number)
        seeds = children(home, group.info.run_id)
        assert len(seeds) == 2 and all(not s.data.tags.get("mlflow.note.content") for s in seeds)
        values = [s.data.metrics["best_val_accuracy"] for s in seeds]
        assert trial.value == pytest.approx(sum(values) / 2)
        assert all("test_accuracy" not in s.data.metrics for s in seeds)  # trials never see the test split
    assert first.registration.champion and len(first.registration.scores) == 2
    # The same best configuration retrained over the same seeds is no significant improvement.
    second = tune(**quick, trials=2, seeds=2, study="seeded", pruner="none", register="seeded-mlp", progress=False)
    assert not second.registration.champion, second.registration.why
    assert "not a significant improvement" in second.registration.why
    champion = c.get_model_version_by_alias("seeded-mlp", "champion")
    assert champion.version == first.registration.version
    assert len(json.loads(champion.tags["test_scores"])) == 2


def test_seeds_zero_is_refused_before_a_study_exists(home):
    result = run_cli("tune", "--dataset", "digits", "--model", "mlp", "--trials", "1", "--seeds", "0",
                     "--in-process")
    assert result.returncode == 2 and "seeds" in result.stderr
    assert all_runs(home) == []
