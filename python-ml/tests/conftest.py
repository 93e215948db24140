"""One service per test session, served in-process on a Unix socket, with a token, like the server runs it."""

import os
import sys
from pathlib import Path

import grpc
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python-ml"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from tabagent_ml import stubs  # noqa: E402

pb, pb_grpc = stubs.load()
TOKEN = "test-token-0123456789"
FIXTURES = ROOT / "tests" / ".fixtures"


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """A model cache in the server's layout (<org>--<name>/) holding the generated Transformers models."""
    cache = tmp_path_factory.mktemp("models")
    for name in ("tiny-transformers", "tiny-classifier"):
        source = FIXTURES / name
        if not source.is_dir():
            pytest.skip("test models missing: run 'deno task setup --for test' (scripts/fixtures.py)")
        target = cache / f"tabagent--{name}"
        target.mkdir()
        for file in source.iterdir():
            (target / file.name).write_bytes(file.read_bytes())
    return cache


@pytest.fixture(scope="session")
def service(tmp_path_factory, model_cache):
    from tabagent_ml.models import Registry
    from tabagent_ml.service import serve

    socket = tmp_path_factory.mktemp("sock") / "ml.sock"
    registry = Registry(model_cache, tmp_path_factory.mktemp("fetch"))
    server, address, _, _ = serve(f"unix:{socket}", registry, TOKEN)
    yield address
    server.stop(0)


@pytest.fixture(scope="session")
def channel(service):
    with grpc.insecure_channel(service) as channel:
        yield channel


AUTH = (("authorization", f"Bearer {TOKEN}"),)


@pytest.fixture(scope="session")
def manage(channel):
    return pb_grpc.ModelManagementStub(channel)


@pytest.fixture(scope="session")
def text(channel):
    return pb_grpc.TransformersStub(channel)


@pytest.fixture(scope="session")
def vision(channel):
    return pb_grpc.MediaPipeStub(channel)


@pytest.fixture(scope="session")
def litert(channel):
    return pb_grpc.LiteRTStub(channel)


def error_code(error: grpc.RpcError) -> str:
    """The TabAgentError code the service put in the trailers."""
    import json

    for key, value in error.trailing_metadata() or ():
        if key == "tabagent-error-bin":
            return json.loads(value)["code"]
    return ""
