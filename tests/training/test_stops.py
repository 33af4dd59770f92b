"""Every way a training stops ends its run with a status and a reason: SIGTERM like Ctrl-C, and
runs a killed process left RUNNING closed by the next command; a new home used by several
processes at once."""

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, all_runs, client

pytestmark = pytest.mark.slow
SLOW_TRAINING = ["--dataset", "digits", "--model", "resnet", "--batch-size", "8", "--epochs", "20"]


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "workbench", "train", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())


def _wait_for_an_epoch(home, process, timeout=300) -> str:
    """The run id once it logged its first epoch (plain SQL: no MLflow client racing the trainer)."""
    import sqlite3

    deadline = time.time() + timeout
    while time.time() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            with sqlite3.connect(f"file:{home / 'mlflow.db'}?mode=ro", uri=True) as db:
                row = db.execute("select run_uuid from metrics where key = 'val_loss' limit 1").fetchone()
        except sqlite3.OperationalError:
            row = None
        if row:
            return row[0]
        time.sleep(0.3)
    raise AssertionError("no epoch was logged in time")


@pytest.mark.parametrize("path", [["--in-process"], []], ids=["in-process", "notebook"])
def test_sigterm_ends_the_run_killed_with_one_line(home, path):
    process = _start(*path, *SLOW_TRAINING)
    run_id = _wait_for_an_epoch(home, process)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 143, err[-3000:]
    assert err.strip().splitlines()[-1] == "workbench train: stopped by SIGTERM"
    assert "Traceback" not in err and "Kernel died" not in err
    run = client(home).get_run(run_id)
    assert run.info.status == "KILLED" and run.data.tags["error"] == "stopped by SIGTERM"
    if not path:  # the notebook, as far as it ran, is attached to the run
        assert any(a.path.endswith(".ipynb") for a in client(home).list_artifacts(run_id, "notebook"))


def _step_process(runner: subprocess.Popen, timeout: float = 120):
    """The runner's step process (`python -m workbench.pipelines.attempts`), once it started."""
    import psutil

    deadline = time.time() + timeout
    while True:
        steps = [p for p in psutil.Process(runner.pid).children() if "workbench.pipelines.attempts" in p.cmdline()]
        if steps:
            return steps[0]
        assert runner.poll() is None and time.time() < deadline, "the step never started"
        time.sleep(0.3)


def test_sigterm_stops_a_pipeline_like_ctrl_c_and_exits_143_with_one_line(home, tmp_path):
    pipeline = tmp_path / "slow.yaml"
    pipeline.write_text("name: slow\nsteps:\n  wait:\n    notebook: tests/fixtures/pipelines/emit.ipynb\n"
                        "    parameters: {pause: 300}\n")
    runner = subprocess.Popen([sys.executable, "-m", "workbench", "pipeline", "run", str(pipeline)], cwd=ROOT,
                              text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    step = _step_process(runner)
    runner.send_signal(signal.SIGTERM)
    out, err = runner.communicate(timeout=120)
    assert runner.returncode == 143, err[-3000:]
    assert err.strip().splitlines()[-1] == "workbench pipeline: stopped by SIGTERM"
    assert "stopped by SIGTERM: stopping the running steps" in out and "Traceback" not in err
    step.wait(timeout=30)
    assert sorted(r.info.status for r in all_runs(home)) == ["KILLED", "KILLED"]  # pipeline and step


def test_three_trainings_started_together_on_a_new_home_all_finish(home):
    command = [sys.executable, "-m", "workbench", "train", "--in-process", "--dataset", "digits", "--model", "mlp",
               "--epochs", "1"]
    processes = [subprocess.Popen([*command, "--seed", str(seed)], cwd=ROOT, text=True, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT) for seed in (1, 2, 3)]
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], [o[-2000:] for o in outputs]
    assert sorted(r.info.status for r in all_runs(home)) == ["FINISHED"] * 3


@pytest.fixture
def small_disk(tmp_path):
    """A 2.5 MB file system (tmpfs) for the checkpoints, where this machine lets us mount one."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2500k", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_ends_the_run_failed_naming_the_file_and_resume_works_once_freed(home, small_disk):
    home.mkdir(parents=True, exist_ok=True)
    for folder in ("checkpoints", "epochs"):  # what training writes each epoch lives on the small disk
        (small_disk / folder).mkdir()
        (home / folder).symlink_to(small_disk / folder)
    command = [sys.executable, "-m", "workbench", "train", "--in-process", "--dataset", "digits", "--model", "mlp",
               "--epochs", "4"]
    full = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert full.returncode == 1, full.stderr[-3000:]
    assert "disk full: " in full.stderr and "Segmentation" not in full.stderr
    (run,) = all_runs(home)
    assert run.info.status == "FAILED" and f"disk full: {home / 'checkpoints'}" in run.data.tags["error"]
    kept = (small_disk / "checkpoints" / run.info.run_id)
    assert (kept / "latest.weights.h5").exists() and not list(kept.glob("pending-*"))
    for epoch_file in (small_disk / "epochs").rglob("*.keras"):  # free the space
        epoch_file.unlink()

    resumed = subprocess.run([sys.executable, "-m", "workbench", "train", "--in-process", "--resume",
                              run.info.run_id], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming run {run.info.run_id} at epoch" in resumed.stdout
    assert client(home).get_run(run.info.run_id).info.status == "FINISHED"


def test_a_pipeline_runner_killed_outright_takes_its_step_along_and_its_runs_are_closed(home, tmp_path):
    pipeline = tmp_path / "slow.yaml"
    pipeline.write_text("name: slow\nsteps:\n  wait:\n    notebook: tests/fixtures/pipelines/emit.ipynb\n"
                        "    parameters: {pause: 300}\n")
    runner = subprocess.Popen([sys.executable, "-m", "workbench", "pipeline", "run", str(pipeline)], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    step = _step_process(runner)
    runner.kill()
    runner.wait()
    step.wait(timeout=30)  # dies with its runner, instead of training on without a timeout
    assert sorted(r.info.status for r in all_runs(home)) == ["RUNNING", "RUNNING"]  # pipeline and step

    quick = tmp_path / "quick.yaml"
    quick.write_text("name: quick\nsteps:\n  now:\n    notebook: tests/fixtures/pipelines/emit.ipynb\n")
    after = subprocess.run([sys.executable, "-m", "workbench", "pipeline", "run", str(quick)], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert after.returncode == 0, after.stderr[-2000:]
    assert after.stdout.count("FAILED, process lost") == 2
    lost = [r for r in all_runs(home) if r.data.tags.get("error", "").startswith("process lost")]
    assert len(lost) == 2 and {r.info.status for r in lost} == {"FAILED"}


def test_a_tuning_study_killed_outright_has_its_study_and_trial_runs_closed_by_the_next_command(home):
    tune = subprocess.Popen([sys.executable, "-m", "workbench", "tune", "--in-process", *SLOW_TRAINING,
                             "--trials", "3", "--pruner", "none", "--study", "killed"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_an_epoch(home, tune)  # the study's parent run and its first trial's run are open now
    tune.kill()
    tune.wait()
    open_runs = [r for r in all_runs(home) if r.info.status == "RUNNING"]
    assert len(open_runs) >= 2 and any(r.data.tags.get("optuna.trial") for r in open_runs)

    after = subprocess.run([sys.executable, "-m", "workbench", "train", "--in-process", "--dataset", "digits",
                            "--model", "mlp", "--epochs", "1"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert after.returncode == 0, after.stderr[-2000:]
    assert after.stdout.count("FAILED, process lost") == len(open_runs)
    assert not [r for r in all_runs(home) if r.info.status == "RUNNING"]  # no run is left RUNNING
    for run in open_runs:
        closed = client(home).get_run(run.info.run_id)
        assert closed.info.status == "FAILED" and closed.data.tags["error"].startswith("process lost")


def test_a_notebook_training_killed_outright_has_its_run_closed_by_the_next_command(home):
    import psutil

    process = _start(*SLOW_TRAINING)  # the notebook path: the run lives in the kernel
    run_id = _wait_for_an_epoch(home, process)
    process.kill()
    process.wait()
    kernel = int(client(home).get_run(run_id).data.tags["workbench.pid"])
    deadline = time.time() + 60  # the kernel notices that its parent is gone and ends

    def kernel_running() -> bool:
        try:
            return psutil.Process(kernel).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    while kernel_running():
        assert time.time() < deadline, "the kernel trains on after its command was killed"
        time.sleep(0.5)

    after = subprocess.run([sys.executable, "-m", "workbench", "train", "--in-process", "--dataset", "digits",
                            "--model", "mlp", "--epochs", "1"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert after.returncode == 0, after.stderr[-2000:]
    assert f"closed run {run_id}" in after.stdout
    lost = client(home).get_run(run_id)
    assert lost.info.status == "FAILED" and lost.data.tags["error"].startswith("process lost")
    assert not [r for r in all_runs(home) if r.info.status == "RUNNING"]
