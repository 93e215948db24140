"""LiteRT (ai-edge-litert): runs a .tflite file on tensors, plus the decoder of MediaPipe's
short-range face detector, so the same image can be checked against MediaPipe's own runner."""

import threading
import time
from pathlib import Path

import numpy as np

from .errors import MLError

DTYPES = {1: np.float32, 2: np.int32, 3: np.uint8, 4: np.int8, 5: np.int64}
CODES = {np.dtype(v): k for k, v in DTYPES.items()}


class Runner:
    """One interpreter per model file; calls are serialised (an interpreter is not re-entrant)."""

    def __init__(self, path: Path) -> None:
        if path.is_dir() or path.suffix != ".tflite":
            raise MLError("bad_request", f"{path} is not a .tflite file")
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path), num_threads=1)
        self.interpreter.allocate_tensors()
        self.inputs = self.interpreter.get_input_details()
        self.outputs = self.interpreter.get_output_details()
        self.lock = threading.Lock()

    def run(self, tensors: list[tuple[str, np.ndarray]]) -> tuple[list[tuple[str, np.ndarray]], float]:
        if len(tensors) != len(self.inputs):
            raise MLError("validation_failed", f"the model takes {len(self.inputs)} input tensor(s), got {len(tensors)}")
        by_name = {d["name"]: d for d in self.inputs}
        with self.lock:
            for index, (name, array) in enumerate(tensors):
                detail = by_name.get(name) if name else self.inputs[index]
                if detail is None:
                    raise MLError("validation_failed", f"the model has no input named {name!r}")
                if tuple(array.shape) != tuple(detail["shape"]) or array.dtype != detail["dtype"]:
                    raise MLError("validation_failed",
                                  f"input {detail['name']!r} wants {np.dtype(detail['dtype']).name}"
                                  f"{list(detail['shape'])}, got {array.dtype.name}{list(array.shape)}")
                self.interpreter.set_tensor(detail["index"], array)
            began = time.perf_counter()
            self.interpreter.invoke()
            ms = (time.perf_counter() - began) * 1000
            return [(d["name"], self.interpreter.get_tensor(d["index"]).copy()) for d in self.outputs], ms


def to_array(dtype: int, shape, data: bytes) -> np.ndarray:
    if dtype not in DTYPES:
        raise MLError("validation_failed", "tensor dtype must be set")
    want = DTYPES[dtype]
    count = int(np.prod(shape)) if len(shape) else 1
    if any(d < 0 for d in shape) or count * np.dtype(want).itemsize != len(data):
        raise MLError("validation_failed", f"tensor data has {len(data)} bytes, shape {list(shape)} needs "
                                           f"{count * np.dtype(want).itemsize}")
    return np.frombuffer(data, dtype=np.dtype(want).newbyteorder("<")).astype(want).reshape(shape)


# ---- MediaPipe's short-range face detector, decoded (SSD anchors, as its graph configures them) ----

FACE_INPUT = 128


def face_anchors() -> np.ndarray:
    """The 896 anchor centres of face_detection_short_range.tflite (strides 8, 16, 16, 16; 2 anchors each)."""
    anchors = []
    strides = [8, 16, 16, 16]
    layer = 0
    while layer < len(strides):
        count = 0
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            count += 2
            last += 1
        size = FACE_INPUT // strides[layer]
        for y in range(size):
            for x in range(size):
                for _ in range(count):
                    anchors.append(((x + 0.5) / size, (y + 0.5) / size))
        layer = last
    return np.array(anchors, dtype=np.float32)


def face_input(rgb: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Letterboxes to 128x128 and scales to [-1, 1]; returns the tensor and the letterbox (x0, y0, sx, sy)."""
    import cv2

    h, w = rgb.shape[:2]
    scale = FACE_INPUT / max(h, w)
    nh, nw = round(h * scale), round(w * scale)
    resized = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((FACE_INPUT, FACE_INPUT, 3), np.uint8)
    top, left = (FACE_INPUT - nh) // 2, (FACE_INPUT - nw) // 2
    canvas[top:top + nh, left:left + nw] = resized
    tensor = (canvas.astype(np.float32) / 127.5 - 1.0)[None]
    return tensor, (left / FACE_INPUT, top / FACE_INPUT, nw / FACE_INPUT, nh / FACE_INPUT)


def decode_faces(boxes: np.ndarray, scores: np.ndarray, letterbox, min_score: float = 0.5,
                 iou: float = 0.3) -> list[tuple[float, tuple[float, float, float, float]]]:
    """Raw outputs (1x896x16, 1x896x1) -> [(score, (x, y, w, h))] normalised to the original image,
    after MediaPipe's weighted non-maximum suppression."""
    anchors = face_anchors()
    raw = boxes.reshape(-1, 16)
    logits = np.clip(scores.reshape(-1), -80, 80)
    probs = 1 / (1 + np.exp(-logits))
    cx = raw[:, 0] / FACE_INPUT + anchors[:, 0]
    cy = raw[:, 1] / FACE_INPUT + anchors[:, 1]
    bw = raw[:, 2] / FACE_INPUT
    bh = raw[:, 3] / FACE_INPUT
    rects = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    order = [i for i in np.argsort(-probs) if probs[i] >= min_score]
    results = []
    while order:
        best = order[0]
        overlaps = [i for i in order if _iou(rects[best], rects[i]) > iou]
        weights = probs[overlaps]
        merged = (rects[overlaps] * weights[:, None]).sum(0) / weights.sum()
        results.append((float(probs[best]), merged))
        order = [i for i in order if i not in overlaps]
    x0, y0, sx, sy = letterbox
    out = []
    for score, (a, b, c, d) in results:
        ax, ay = (a - x0) / sx, (b - y0) / sy
        cx_, cy_ = (c - x0) / sx, (d - y0) / sy
        out.append((score, (float(ax), float(ay), float(cx_ - ax), float(cy_ - ay))))
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
