"""The Python peer of `deno task bench grpc`: a grpcio client against the same ML worker, and
sentence-transformers called directly. Reads commands on stdin, answers one JSON line each:
  ping <address> <token> <calls>  -> {"p99_us", "p50_us"}   (sequential unary Pings)
  embed <batch> <rounds>          -> {"sentences_per_s"}     (model.encode on the batch, best of rounds)
"""

import json
import sys
import time

sys.path.insert(0, sys.argv[1])  # python-ml/
from tabagent_ml import stubs  # noqa: E402

pb, pb_grpc = stubs.load()
_model = None


def ping(address: str, token: str, calls: int) -> dict:
    import grpc

    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.ModelManagementStub(channel)
        metadata = (("authorization", f"Bearer {token}"),)
        request = pb.PingRequest()
        for _ in range(500):
            stub.Ping(request, metadata=metadata, timeout=5)
        times = []
        for _ in range(calls):
            began = time.perf_counter_ns()
            stub.Ping(request, metadata=metadata, timeout=5)
            times.append(time.perf_counter_ns() - began)
    times.sort()
    return {"p99_us": times[int(len(times) * 0.99) - 1] / 1000, "p50_us": times[len(times) // 2] / 1000}


def embed(batch: list[str]) -> dict:
    global _model
    from sentence_transformers import SentenceTransformer

    from tabagent_ml.models import builtin_embedding

    if _model is None:
        _model = SentenceTransformer(str(builtin_embedding("sentence-transformers/all-MiniLM-L6-v2")), device="cpu")
        _model.encode(batch[:8], normalize_embeddings=True)
    began = time.perf_counter()
    _model.encode(batch, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
    return {"sentences_per_s": len(batch) / (time.perf_counter() - began)}


for line in sys.stdin:
    parts = line.split(" ", 1)
    if parts[0] == "ping":
        address, token, calls = parts[1].split()
        print(json.dumps(ping(address, token, int(calls))), flush=True)
    elif parts[0] == "embed":
        print(json.dumps(embed(json.loads(parts[1]))), flush=True)
