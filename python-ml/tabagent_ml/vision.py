"""MediaPipe: faces, pose and hands in an image, with the legacy solutions (whose models ship in the
mediapipe 0.10.14 wheel). A single image uses static-image graphs shared under a lock; a frame
stream gets its own tracking graphs, so consecutive video frames reuse the previous detections.
"""

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from .errors import MLError

FACES, POSE, HANDS = 1, 2, 3
TASK_NAMES = {FACES: "faces", POSE: "pose", HANDS: "hands"}
MAX_PIXELS = 40_000_000
MAX_IMAGE_BYTES = 32 * 1024 * 1024


@dataclass
class Found:
    task: int
    score: float
    box: tuple[float, float, float, float]
    landmarks: list[tuple[float, float, float, float]] = field(default_factory=list)
    label: str = ""


def decode_image(data: bytes, width: int = 0, height: int = 0) -> np.ndarray:
    """RGB uint8 HxWx3 from an encoded image (or raw RGB when width and height are given)."""
    if not data:
        raise MLError("validation_failed", "image is empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise MLError("payload_too_large", f"image is larger than {MAX_IMAGE_BYTES} bytes")
    if width or height:
        if width <= 0 or height <= 0 or width * height > MAX_PIXELS or len(data) != width * height * 3:
            raise MLError("validation_failed", "raw RGB needs width * height * 3 bytes")
        return np.frombuffer(data, np.uint8).reshape(height, width, 3)
    import cv2

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise MLError("unsupported_media_type", "image is not a decodable PNG, JPEG, WebP, BMP or TIFF")
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise MLError("payload_too_large", f"image has more than {MAX_PIXELS} pixels")
    return np.ascontiguousarray(image[:, :, ::-1])


def _box_of(points) -> tuple[float, float, float, float]:
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x0, y0 = max(0.0, min(xs)), max(0.0, min(ys))
    x1, y1 = min(1.0, max(xs)), min(1.0, max(ys))
    return x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0)


class Graphs:
    """One MediaPipe graph per task, created on first use. `static`: independent images."""

    def __init__(self, static: bool, min_confidence: float = 0.5) -> None:
        self.static = static
        self.min_confidence = min_confidence
        self._graphs: dict[int, object] = {}
        self._locks = {task: threading.Lock() for task in TASK_NAMES}

    def _graph(self, task: int):
        graph = self._graphs.get(task)
        if graph is not None:
            return graph
        import mediapipe as mp

        c = self.min_confidence
        if task == FACES:
            graph = mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=c)
        elif task == POSE:
            graph = mp.solutions.pose.Pose(static_image_mode=self.static, model_complexity=1,
                                           min_detection_confidence=c, min_tracking_confidence=c)
        elif task == HANDS:
            graph = mp.solutions.hands.Hands(static_image_mode=self.static, max_num_hands=2, model_complexity=1,
                                             min_detection_confidence=c, min_tracking_confidence=c)
        else:
            raise MLError("validation_failed", f"unknown vision task {task}")
        self._graphs[task] = graph
        return graph

    def detect(self, rgb: np.ndarray, task: int, min_confidence: float = 0.0) -> list[Found]:
        if task not in TASK_NAMES:
            raise MLError("validation_failed", "task must be faces, pose or hands")
        with self._locks[task]:
            results = self._graph(task).process(rgb)
        found: list[Found] = []
        if task == FACES:
            for d in results.detections or []:
                b = d.location_data.relative_bounding_box
                points = [(k.x, k.y, 0.0, 0.0) for k in d.location_data.relative_keypoints]
                found.append(Found(FACES, float(d.score[0]), (b.xmin, b.ymin, b.width, b.height), points))
        elif task == POSE:
            if results.pose_landmarks:
                points = [(p.x, p.y, p.z, p.visibility) for p in results.pose_landmarks.landmark]
                visible = [p for p in points if p[3] >= 0.5] or points
                score = float(np.mean([p[3] for p in points]))
                found.append(Found(POSE, score, _box_of(visible), points))
        else:
            for hand, side in zip(results.multi_hand_landmarks or [], results.multi_handedness or []):
                points = [(p.x, p.y, p.z, 0.0) for p in hand.landmark]
                category = side.classification[0]
                found.append(Found(HANDS, float(category.score), _box_of(points), points, category.label))
        return [f for f in found if f.score >= min_confidence]

    def close(self) -> None:
        for graph in self._graphs.values():
            graph.close()
        self._graphs.clear()


def run_tasks(graphs: Graphs, rgb: np.ndarray, tasks, min_confidence: float) -> tuple[list[Found], float]:
    began = time.perf_counter()
    found: list[Found] = []
    for task in dict.fromkeys(tasks or [FACES]):
        found.extend(graphs.detect(rgb, task, min_confidence))
    return found, (time.perf_counter() - began) * 1000
