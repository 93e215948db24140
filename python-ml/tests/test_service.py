"""The service itself: health, auth, errors, the lifeline, remote model files."""

import http.server
import os
import subprocess
import sys
import threading
import time
from functools import partial

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import AUTH, FIXTURES, ROOT, error_code, pb, pb_grpc


def test_health_serving(channel):
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_ping_echoes_and_names_its_pid(manage):
    reply = manage.Ping(pb.PingRequest(payload=b"abc"), metadata=AUTH)
    assert reply.payload == b"abc"
    assert reply.pid == os.getpid()


def test_calls_without_the_token_are_refused(manage):
    with pytest.raises(grpc.RpcError) as caught:
        manage.Ping(pb.PingRequest())
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as caught:
        manage.Ping(pb.PingRequest(), metadata=(("authorization", "Bearer wrong"),))
    assert error_code(caught.value) == "unauthorized"


def test_unknown_model_is_not_found(text):
    with pytest.raises(grpc.RpcError) as caught:
        text.Embed(pb.EmbedRequest(model="nobody/nothing", inputs=["x"]), metadata=AUTH)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_code(caught.value) == "not_found"


def test_status_and_list_name_the_builtins(manage):
    status = manage.Status(pb.StatusRequest(), metadata=AUTH)
    assert status.pid == os.getpid()
    assert status.versions["grpcio"] == grpc.__version__
    names = {m.model for m in manage.ListModels(pb.ListModelsRequest(), metadata=AUTH).models}
    assert "sentence-transformers/all-MiniLM-L6-v2" in names
    assert "mediapipe/face_detection_short_range" in names


def _spawn(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "python-ml")}
    return subprocess.Popen([sys.executable, "-m", "tabagent_ml", "--address", "127.0.0.1:0", *args],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT / "python-ml")


def test_the_service_exits_when_its_lifeline_closes():
    child = _spawn("--lifeline", "stdin")
    line = child.stderr.readline()
    assert b'"listening"' in line
    child.stdin.close()  # what the kernel does when the server dies, even by SIGKILL
    assert child.wait(timeout=10) == 0


def test_the_service_refuses_to_listen_off_loopback_without_tls():
    child = _spawn("--address", "0.0.0.0:0")
    assert child.wait(timeout=10) == 2
    assert b"refusing" in child.stderr.read()


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files like the server's /v1/models/{id}/files/ route: bearer token required."""

    def do_GET(self):
        if self.headers.get("authorization") != "Bearer file-token":
            self.send_error(401)
            return
        super().do_GET()

    def do_HEAD(self):
        if self.headers.get("authorization") != "Bearer file-token":
            self.send_error(401)
            return
        super().do_HEAD()

    def log_message(self, *args):
        pass


def test_a_remote_worker_fetches_model_files_with_the_token(tmp_path, text):
    from tabagent_ml.models import GENERATION, Registry

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             partial(_RangeHandler, directory=str(FIXTURES / "tiny-transformers")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        files = sorted(p.name for p in (FIXTURES / "tiny-transformers").iterdir())
        registry = Registry(None, tmp_path)
        remote = pb.RemoteFiles(base_url=base, files=files, token="file-token")
        folder = registry.fetch("tabagent/tiny-transformers", remote)
        for name in files:
            assert (folder / name).read_bytes() == (FIXTURES / "tiny-transformers" / name).read_bytes()
        # Cached: a second fetch keeps the files (same size on the server).
        mtime = (folder / "model.safetensors").stat().st_mtime_ns
        registry.fetch("tabagent/tiny-transformers", remote)
        assert (folder / "model.safetensors").stat().st_mtime_ns == mtime
        from tabagent_ml.errors import MLError

        with pytest.raises(MLError) as caught:
            registry.fetch("tabagent/other", pb.RemoteFiles(base_url=base, files=["config.json"], token="bad"))
        assert caught.value.code == "unauthorized"
    finally:
        server.shutdown()
