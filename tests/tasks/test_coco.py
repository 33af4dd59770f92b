"""COCO detection data: loading and letterboxing, bad datasets, COCO export and mAP, splits."""

import contextlib
import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from workbench.data.coco import annotations_file, load_coco, split_detection
from workbench.errors import DataError
from workbench.tasks.detection_scores import (coco_detections, coco_ground_truth, coco_map,
                                              precision_recall_figure)

RED, GREEN = (230, 20, 20), (20, 200, 40)
GREY_VALUE = 250                    # the grayscale image's box colour, white-ish
CATEGORIES = [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}]   # out of order and non-contiguous
SIZE = (64, 96)                     # (height, width) frames the fixture is letterboxed to


def _image(path, mode, size, rectangles):
    """An image of `mode` with filled rectangles [(x, y, w, h, colour)], saved as PNG or JPEG."""
    background = 0 if mode in ("L", "P") else (0, 0, 0, 255) if mode == "RGBA" else (0, 0, 0)
    image = Image.new(mode, size, background)
    draw = ImageDraw.Draw(image)
    for x, y, w, h, colour in rectangles:
        draw.rectangle([x, y, x + w - 1, y + h - 1], fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, quality=98) if path.suffix == ".jpg" else image.save(path)


def _write(folder, images, annotations, categories=CATEGORIES, name="annotations.json"):
    file = folder / name
    file.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return file


@pytest.fixture
def dataset(tmp_path):
    """Four images: RGB JPEG (wide), grayscale PNG (tall, in images/), RGBA PNG, and one negative."""
    _image(tmp_path / "wide.jpg", "RGB", (200, 100), [(20, 10, 60, 40, RED), (120, 50, 50, 30, GREEN)])
    _image(tmp_path / "images" / "tall.png", "L", (50, 120), [(10, 20, 30, 60, GREY_VALUE)])
    _image(tmp_path / "alpha.png", "RGBA", (80, 80), [(40, 40, 30, 30, GREEN + (128,))])
    _image(tmp_path / "empty.png", "RGB", (40, 30), [])
    images = [{"id": 1, "file_name": "wide.jpg", "width": 200, "height": 100},
              {"id": 2, "file_name": "tall.png", "width": 50, "height": 120},
              {"id": 5, "file_name": "alpha.png", "width": 80, "height": 80},
              {"id": 6, "file_name": "empty.png", "width": 40, "height": 30}]
    annotations = [{"id": 11, "image_id": 1, "category_id": 7, "bbox": [20, 10, 60, 40], "iscrowd": 0},
                   {"id": 12, "image_id": 1, "category_id": 3, "bbox": [120, 50, 50, 30], "iscrowd": 0},
                   {"id": 13, "image_id": 2, "category_id": 3, "bbox": [10, 20, 30, 60]},
                   {"id": 14, "image_id": 5, "category_id": 7, "bbox": [40, 40, 30, 30]}]
    return tmp_path, images, annotations


def _inside(frame, box, margin=2):
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    return frame[y0 + margin:y1 - margin, x0 + margin:x1 - margin].reshape(-1, 3).astype(int)


# ---- loading ---------------------------------------------------------------------------------

def test_loads_letterboxes_and_orders_classes(dataset):
    folder, images, annotations = dataset
    _write(folder, images, annotations)
    data = load_coco(folder, size=SIZE)
    assert data.class_names == ["cat", "dog"]                  # id 3, then id 7
    assert data.frames.shape == (4, 64, 96, 3) and data.frames.dtype == np.uint8
    assert data.names == ["wide.jpg", "tall.png", "alpha.png", "empty.png"]
    assert data.source == str((folder / "annotations.json").resolve())
    assert [b.dtype for b in data.boxes] == [np.float32] * 4 and [len(b) for b in data.boxes] == [2, 1, 1, 0]
    assert [lab.tolist() for lab in data.labels] == [[1, 0], [0], [1], []]
    # wide 200x100 scales by 0.48 to 96x48: rows below 48 are padding
    np.testing.assert_allclose(data.boxes[0], [[9.6, 4.8, 38.4, 24.0], [57.6, 24.0, 81.6, 38.4]], atol=1e-4)
    assert data.frames[0, 50:].max() == 0
    # tall 50x120 scales to height 64: columns beyond ~27 are padding
    assert data.frames[1, :, 30:].max() == 0
    expected = {(0, 0): RED, (0, 1): GREEN, (1, 0): (GREY_VALUE,) * 3, (2, 0): GREEN}
    for (image, box), colour in expected.items():
        pixels = _inside(data.frames[image], data.boxes[image][box], margin=2 if image != 0 else 1)
        assert len(pixels) and np.abs(pixels - colour).max() <= 25, (image, box)
    assert data.notes == []


def test_annotations_file_choices(tmp_path):
    (tmp_path / "train.json").write_text("{}")
    assert annotations_file(tmp_path) == (tmp_path / "train.json").resolve()
    assert annotations_file(tmp_path / "train.json") == (tmp_path / "train.json").resolve()
    (tmp_path / "val.json").write_text("{}")
    with pytest.raises(DataError, match="train.json, val.json"):
        annotations_file(tmp_path)
    (tmp_path / "annotations.json").write_text("{}")
    assert annotations_file(tmp_path).name == "annotations.json"
    with pytest.raises(DataError, match="does not exist"):
        annotations_file(tmp_path / "nowhere")
    with pytest.raises(DataError, match="no annotations.json"):
        annotations_file((tmp_path / "blank").mkdir() or tmp_path / "blank")


# ---- bad datasets ----------------------------------------------------------------------------

@pytest.mark.parametrize("content, expected", [
    ("", "is empty"),
    ("  \n", "is empty"),
    ('{"annotations": [], "categories": []}', '"images" is missing'),
    ('{"images": [{"id": 1, "file_name": "a.png"}], "annotations": [], "categories": [{"id": 1, "name": "a"}]}',
     '"annotations" is empty'),
    ('[1, 2]', "not an object"),
    ('{"images": [\n  {"id": 1,}\n]}', "line 2, column"),
])
def test_malformed_files(tmp_path, content, expected):
    (tmp_path / "annotations.json").write_text(content)
    with pytest.raises(DataError, match=expected) as caught:
        load_coco(tmp_path)
    assert "annotations.json" in str(caught.value)
    if "line" not in expected:
        assert "a COCO detection file is a JSON object" in str(caught.value)


def test_not_utf8_names_the_file(tmp_path):
    (tmp_path / "annotations.json").write_bytes(b'{"images": "\xff"}')
    with pytest.raises(DataError, match=r"annotations.json is not UTF-8 text: byte 12"):
        load_coco(tmp_path)


def test_missing_images_are_skipped_with_a_note(dataset):
    folder, images, annotations = dataset
    (folder / "alpha.png").unlink()
    _write(folder, images, annotations)
    data = load_coco(folder, size=SIZE)
    assert data.names == ["wide.jpg", "tall.png", "empty.png"]
    assert len(data.notes) == 1 and "alpha.png" in data.notes[0] and "id 5" in data.notes[0]


def test_every_image_missing_is_an_error(dataset):
    folder, images, annotations = dataset
    _write(folder, [{**image, "file_name": f"gone-{image['id']}.png"} for image in images], annotations)
    with pytest.raises(DataError, match=r"none of its 4 image\(s\) could be read \(4 missing\).*gone-1.png"):
        load_coco(folder, size=SIZE)


def test_undecodable_image_is_skipped(dataset):
    folder, images, annotations = dataset
    (folder / "images" / "tall.png").write_bytes(b"not a png at all")
    _write(folder, images, annotations)
    data = load_coco(folder, size=SIZE)
    assert "tall.png" not in data.names and len(data) == 3
    assert len(data.notes) == 1 and "tall.png" in data.notes[0] and "cannot be decoded" in data.notes[0]


@pytest.mark.parametrize("bbox", [[190, 10, 20, 20], [-5, 0, 10, 10], [0, 95, 10, 10], [10, 10, 0, 5],
                                  [10, 10, 5, -1]])
def test_box_outside_its_image_is_skipped(dataset, bbox):
    folder, images, annotations = dataset
    _write(folder, images, annotations + [{"id": 99, "image_id": 1, "category_id": 3, "bbox": bbox}])
    data = load_coco(folder, size=SIZE)
    assert len(data.boxes[0]) == 2
    assert len(data.notes) == 1
    note = data.notes[0]
    assert "annotation 99" in note and "wide.jpg" in note and "200x100" in note and f"x={bbox[0]}" in note


def test_box_within_tolerance_is_clipped(dataset):
    folder, images, annotations = dataset
    _write(folder, images, annotations + [{"id": 99, "image_id": 1, "category_id": 3, "bbox": [-0.5, 0, 200.8, 50]}])
    data = load_coco(folder, size=SIZE)
    assert data.notes == []
    np.testing.assert_allclose(data.boxes[0][2], [0, 0, 96, 24], atol=1e-4)


def test_unknown_category_is_an_error(dataset):
    folder, images, annotations = dataset
    _write(folder, images, annotations + [{"id": 42, "image_id": 1, "category_id": 5, "bbox": [1, 1, 5, 5]}])
    with pytest.raises(DataError, match=r"annotation 42 has category_id 5.*known ids: 3, 7"):
        load_coco(folder, size=SIZE)


def test_unknown_image_is_an_error(dataset):
    folder, images, annotations = dataset
    _write(folder, images, annotations + [{"id": 43, "image_id": 77, "category_id": 3, "bbox": [1, 1, 5, 5]}])
    with pytest.raises(DataError, match=r"annotation 43 refers to image_id 77"):
        load_coco(folder, size=SIZE)


def test_malformed_bbox_is_an_error(dataset):
    folder, images, annotations = dataset
    _write(folder, images, annotations + [{"id": 44, "image_id": 1, "category_id": 3, "bbox": [1, 1, 5]}])
    with pytest.raises(DataError, match=r"annotation 44 \(image wide.jpg\) has bbox \[1, 1, 5\]"):
        load_coco(folder, size=SIZE)


def test_crowd_annotations_are_skipped_with_one_note(dataset):
    folder, images, annotations = dataset
    crowd = [{"id": 50 + i, "image_id": 1, "category_id": 3, "bbox": [0, 0, 10, 10], "iscrowd": 1} for i in range(3)]
    _write(folder, images, annotations + crowd)
    data = load_coco(folder, size=SIZE)
    assert len(data.boxes[0]) == 2
    assert len(data.notes) == 1 and "3 crowd annotation(s)" in data.notes[0]


def test_many_skipped_boxes_are_summarised(dataset):
    folder, images, annotations = dataset
    outside = [{"id": 100 + i, "image_id": 1, "category_id": 3, "bbox": [300, 0, 5, 5]} for i in range(15)]
    _write(folder, images, annotations + outside)
    notes = load_coco(folder, size=SIZE).notes
    assert len(notes) == 11 and "annotation 100" in notes[0] and "5 more" in notes[-1]


def test_palette_and_named_file(tmp_path):
    image = Image.new("P", (30, 30), 0)
    image.putpalette([0, 0, 0, 10, 20, 240] + [0] * 762)
    ImageDraw.Draw(image).rectangle([5, 5, 24, 24], fill=1)
    image.info["transparency"] = 0
    image.save(tmp_path / "p.png", transparency=0)
    file = _write(tmp_path, [{"id": 1, "file_name": "p.png"}],
                  [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [5, 5, 20, 20]}],
                  [{"id": 1, "name": "blue"}], name="labels.json")
    data = load_coco(file, size=(30, 30))
    assert np.abs(_inside(data.frames[0], data.boxes[0][0]) - (10, 20, 240)).max() == 0


# ---- COCO export and mAP ---------------------------------------------------------------------

def _truth():
    boxes = [np.array([[10, 10, 40, 40], [50, 20, 90, 60]], np.float32), np.array([[5, 5, 25, 45]], np.float32),
             np.zeros((0, 4), np.float32)]
    labels = [np.array([0, 1], np.int32), np.array([1], np.int32), np.zeros(0, np.int32)]
    return boxes, labels


def test_export_reads_back_in_pycocotools():
    from pycocotools.coco import COCO

    boxes, labels = _truth()
    truth = coco_ground_truth(boxes, labels, ["cat", "dog"], (64, 96))
    json.dumps(truth)   # plain JSON types only
    coco = COCO()
    with contextlib.redirect_stdout(io.StringIO()):
        coco.dataset = truth
        coco.createIndex()
        found = coco.loadRes(coco_detections(boxes, labels, [np.array([0.9, 0.8]), np.array([0.7]), np.zeros(0)]))
    assert coco.getImgIds() == [1, 2, 3] and coco.getCatIds() == [1, 2]
    assert coco.imgs[1]["width"] == 96 and coco.imgs[1]["height"] == 64
    assert [a["bbox"] for a in coco.loadAnns(coco.getAnnIds(imgIds=[1]))] == [[10, 10, 30, 30], [50, 20, 40, 40]]
    assert [a["category_id"] for a in coco.loadAnns(coco.getAnnIds())] == [1, 2, 2]
    assert len({a["id"] for a in truth["annotations"]}) == 3 and truth["annotations"][0]["area"] == 900
    assert len(found.getAnnIds()) == 3


def test_map_perfect_shifted_and_empty():
    boxes, labels = _truth()
    truth = coco_ground_truth(boxes, labels, ["cat", "dog"], (64, 96))
    scores = [np.full(len(b), 0.9, np.float32) for b in boxes]
    perfect = coco_map(truth, coco_detections(boxes, labels, scores))
    assert perfect.map50 == pytest.approx(1.0) and perfect.map == pytest.approx(1.0)
    assert perfect.recall.shape == perfect.precision.shape == (101,)
    np.testing.assert_allclose(perfect.precision, 1.0)

    shifted = [b + np.array([1, 0, 1, 0], np.float32) * (b[:, 2:3] - b[:, 0:1]) / 2 for b in boxes]
    worse = coco_map(truth, coco_detections(shifted, labels, scores))
    assert worse.map50 < 0.5 and worse.map < perfect.map

    none = coco_map(truth, coco_detections([np.zeros((0, 4))] * 3, [np.zeros(0)] * 3, [np.zeros(0)] * 3))
    assert (none.map50, none.map, none.map75) == (0.0, 0.0, 0.0) and none.precision.max() == 0

    no_truth = coco_ground_truth([np.zeros((0, 4))] * 3, [np.zeros(0)] * 3, ["cat", "dog"], (64, 96))
    assert coco_map(no_truth, coco_detections(boxes, labels, scores)).map50 == 0.0


def test_precision_ignores_classes_without_ground_truth(capsys):
    boxes, labels = _truth()
    truth = coco_ground_truth(boxes, labels, ["cat", "dog", "bird"], (64, 96))
    scores = [np.full(len(b), 0.9, np.float32) for b in boxes]
    result = coco_map(truth, coco_detections(boxes, labels, scores))
    np.testing.assert_allclose(result.precision, 1.0)
    assert capsys.readouterr().out == ""     # COCOeval's prints are silenced


def test_precision_recall_figure():
    boxes, labels = _truth()
    truth = coco_ground_truth(boxes, labels, ["cat", "dog"], (64, 96))
    model = coco_map(truth, coco_detections(boxes, labels, [np.ones(len(b)) for b in boxes]))
    fig = precision_recall_figure(model, coco_map(truth, []), title="PR")
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert texts == ["model (AP50 1.000)", "baseline (AP50 0.000)"]


# ---- splits ----------------------------------------------------------------------------------

def test_split_detection(dataset):
    folder, images, annotations = dataset
    _write(folder, images, annotations)
    data = load_coco(folder, size=SIZE)
    data.frames = np.zeros((20, 4, 4, 3), np.uint8)   # only the count matters
    train, val, test = split_detection(data, 0.2, seed=1)
    assert sorted(train + val + test) == list(range(20)) and (len(val), len(test)) == (4, 4)
    assert split_detection(data, 0.2, seed=1) == (train, val, test)
    assert split_detection(data, 0.2, seed=2) != (train, val, test)
    data.frames = data.frames[:3]
    assert [len(part) for part in split_detection(data, 0.1, seed=0)] == [1, 1, 1]
    data.frames = data.frames[:2]
    with pytest.raises(DataError, match="2 usable image"):
        split_detection(data, 0.1, seed=0)
