"""Calibration images for the INT8 peers (make_qdq.py, torch_int8.py).

An image becomes the network's input as torchvision's eval transform makes it,
with the model's own `resnet.preprocess` metadata (the engine's default when
absent): decode with PIL, convert to RGB, Resize(resize) (PIL's bilinear
with antialiasing) on the shorter side, CenterCrop(crop), pixels 0..255 times
`scale`, channels in `order`, minus `mean`, divided by `std`, NCHW float32.

The default calibration set is the photos of Debian's darknet package (7
photos), or without it the repository's image fixtures (variants of the same
photos); --calib takes folders or files instead. It is small: a sanity
calibration for a benchmark, not an accuracy study.
"""
import glob
import json
import os

import numpy as np
from PIL import Image
from torchvision import transforms

DARKNET = "/usr/share/darknet/data"
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                        "fixtures", "images")
DEFAULT_DIRS = [DARKNET if os.path.isdir(DARKNET) else os.path.normpath(FIXTURES)]
DEFAULT_PREPROCESS = {"resize": 256, "crop": 224, "scale": 1 / 255,
                      "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                      "order": "RGB"}
EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def image_paths(args):
    """The image files of the folders and files in args (sorted per folder)."""
    paths = []
    for a in args or DEFAULT_DIRS:
        if os.path.isdir(a):
            paths += sorted(p for p in glob.glob(os.path.join(a, "*"))
                            if p.lower().endswith(EXTS) and os.path.isfile(p))
        elif os.path.isfile(a):
            paths.append(a)
        else:
            raise SystemExit("%s: no such file or folder" % a)
    if not paths:
        raise SystemExit("no calibration images in %s" % " ".join(args or DEFAULT_DIRS))
    return paths


def preprocess_of(meta):
    """The model's preprocessing (dict) from its safetensors metadata."""
    p = dict(DEFAULT_PREPROCESS)
    if meta.get("resnet.preprocess"):
        p.update(json.loads(meta["resnet.preprocess"]))
    return p


def load(path, pre):
    """One image as a float32 [3, crop, crop] array, preprocessed as pre says."""
    im = Image.open(path)
    im = im.convert("RGB")
    im = transforms.CenterCrop(pre["crop"])(transforms.Resize(pre["resize"])(im))
    x = np.asarray(im, dtype=np.float32) * np.float32(pre["scale"])  # HWC, RGB
    if pre.get("order", "RGB").upper() == "BGR":
        x = x[:, :, ::-1]
    x = (x - np.asarray(pre["mean"], np.float32)) / np.asarray(pre["std"], np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def batch(paths, pre):
    """The images as one float32 [N, 3, crop, crop] array."""
    return np.stack([load(p, pre) for p in paths])
