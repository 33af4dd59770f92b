"""The training engine: every architecture, optimizer, activation and loss choice trains; seeds repeat."""

import itertools
import math

import numpy as np
import pytest

from workbench.tasks.configure import make_config
from workbench.config import RunConfig
from workbench.tasks import get_task
from workbench.training import compile_model, fit, seed_everything


@pytest.fixture(scope="module")
def small_digits():
    data = get_task("images").load_data(make_config(task="images", dataset="digits"))
    data.x_train, data.y_train = data.x_train[:128], data.y_train[:128]
    data.x_val, data.y_val = data.x_val[:32], data.y_val[:32]
    return data


CHOICES = list(itertools.product(("mlp", "cnn", "resnet"), ("adam", "sgd", "rmsprop"))) + [
    ("mlp", "adam", "sigmoid"), ("mlp", "adam", "tanh"), ("cnn", "adam", "gelu")]


@pytest.mark.parametrize("choice", CHOICES, ids=lambda c: "-".join(c))
def test_each_architecture_and_optimizer_trains(choice, small_digits, tmp_path):
    model_name, optimizer, *activation = choice
    config = make_config(task="images", dataset="digits", model=model_name, optimizer=optimizer,
                                 activation=activation[0] if activation else "relu", epochs=1,
                                 batch_size=32, dropout=0.2, l1=1e-5, l2=1e-4)
    task = get_task("images")
    model = task.build_model(config, small_digits)
    compile_model(model, config, task, small_digits)
    history = fit(model, config, task, small_digits, tmp_path / "backup", verbose=0)
    assert math.isfinite(history.history["loss"][0])
    assert model.losses, "L1/L2 penalties are part of the loss"


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "mse"])
def test_one_hot_losses_train_with_a_matching_accuracy(loss, small_digits, tmp_path):
    config = make_config(task="images", dataset="digits", model="mlp", loss=loss, epochs=10)
    seed_everything(config.seed)
    task = get_task("images")
    model = task.build_model(config, small_digits)
    compile_model(model, config, task, small_digits)
    history = fit(model, config, task, small_digits, tmp_path / "backup", verbose=0)
    assert history.history["accuracy"][-1] > 0.5  # a wrong accuracy (exact match on one-hot) stays ~0


def test_same_seed_same_training(small_digits, tmp_path):
    def losses(run):
        config = make_config(task="images", dataset="digits", model="cnn", epochs=2, dropout=0.3)
        seed_everything(config.seed)
        task = get_task("images")
        model = task.build_model(config, small_digits)
        compile_model(model, config, task, small_digits)
        return fit(model, config, task, small_digits, tmp_path / run, verbose=0).history["val_loss"]

    np.testing.assert_array_equal(losses("a"), losses("b"))


def test_epochs_left_to_the_data_count_gradient_steps_and_stop_early():
    import dataclasses

    from workbench.data.splits import Splits
    from workbench.training import resolve_epochs

    task = get_task("images")
    low, high = task.auto_epoch_range
    chosen = dataclasses.replace(make_config(task="images", batch_size=50), epochs=0)

    def splits(n):
        x, y = np.zeros((n, 2), np.float32), np.zeros(n, np.int64)
        return Splits(x, y, x[:1], y[:1], x[:1], y[:1], ["a"], "tiny", "test")

    small = resolve_epochs(chosen, task, splits(500))  # 10 steps an epoch
    assert small.epochs == min(high, -(-task.auto_steps // 10)) and small.patience == task.auto_patience
    assert resolve_epochs(chosen, task, splits(100)).epochs == high  # 2 steps an epoch: capped
    assert resolve_epochs(chosen, task, splits(1_000_000)).epochs == low  # 20,000 steps an epoch
    assert resolve_epochs(chosen, task, splits(500), replicas=2).epochs == min(high, -(-task.auto_steps // 5))
    assert resolve_epochs(dataclasses.replace(chosen, patience=3), task, splits(500)).patience == 3
    given = make_config(task="images", epochs=7)
    assert resolve_epochs(given, task, splits(500)) == given


def test_patience_spans_the_tasks_steps_on_small_sets():
    import dataclasses

    from workbench.data.splits import Splits
    from workbench.training import resolve_epochs

    task = get_task("speech")
    config = dataclasses.replace(make_config(task="speech", batch_size=50))
    x, y = np.zeros((500, 2), np.float32), np.zeros(500, np.int64)  # 10 steps an epoch
    chosen = resolve_epochs(config, task, Splits(x, y, x[:1], y[:1], x[:1], y[:1], ["a"], "tiny", "test"))
    assert chosen.patience == max(task.auto_patience, task.auto_patience_steps // 10) > task.auto_patience
    assert make_config(task="text", model="minilm").epochs == 3  # a pretrained encoder: few epochs
    assert make_config(task="text", model="cnn1d").epochs == 0  # from the data
    assert make_config(task="text", model="transformer").dropout == 0.3  # its only regularizer
    assert make_config(task="text", model="transformer", dropout=0.1).dropout == 0.1
    assert make_config(task="text", model="lstm").dropout == 0 == make_config(task="images").dropout


def test_a_pretrained_encoder_warms_its_rate_up_and_models_from_scratch_do_not():
    from workbench.models.compiling import make_optimizer

    def rates(model, steps, **options):
        optimizer = make_optimizer(make_config(task="text", model=model, **options), 100,
                                   get_task("text").warmup_fraction_for(model))
        for step in steps:
            optimizer.iterations.assign(step)
            yield float(optimizer.learning_rate)

    first, middle, end_of_warmup, last = rates("minilm", (0, 15, 30, 299), learning_rate=1e-4)  # 3 epochs
    assert first == 0 and middle == pytest.approx(5e-5) and end_of_warmup == pytest.approx(1e-4)
    assert last < 1e-6  # then the cosine decay to the last step
    assert list(rates("cnn1d", (0,), epochs=3)) == [pytest.approx(1e-3)]
