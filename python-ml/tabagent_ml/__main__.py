"""`python -m tabagent_ml`: runs the ML service until its parent goes away or it is told to stop.

  --address unix:/path.sock | host:port   where to listen (port 0: any free one, logged)
  --lifeline stdin                         exit when stdin reaches EOF: the server holds the pipe,
                                           so even a SIGKILLed server leaves no orphan behind
  --parent-pid N                           also exit when the parent process changes
  --model-cache DIR                        the server's model cache (models load by path from it)
  --fetch-cache DIR                        where files fetched from a remote server are cached
  --tls-cert/--tls-key PEM                 serve TLS (remote workers)
The token comes from the environment variable TABAGENT_ML_TOKEN (never argv, which `ps` shows).
"""

import argparse
import os

# No hub at run time, no progress bars on stderr (the server parses it as JSON log lines).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import signal
import sys
import threading
import time
from pathlib import Path

from . import log


def _watch_stdin(stop) -> None:
    try:
        while sys.stdin.buffer.read(65536):
            pass
    except (OSError, ValueError):
        pass
    stop("the server closed the lifeline (stdin)")


def _watch_parent(pid: int, stop) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != pid:
            stop(f"the parent process {pid} exited")
            return


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tabagent-ml")
    parser.add_argument("--address", default="127.0.0.1:0")
    parser.add_argument("--lifeline", choices=["stdin", "none"], default="none")
    parser.add_argument("--parent-pid", type=int, default=0)
    parser.add_argument("--model-cache", default="")
    parser.add_argument("--fetch-cache", default=str(Path.home() / ".cache" / "tabagent-ml"))
    parser.add_argument("--tls-cert", default="")
    parser.add_argument("--tls-key", default="")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    log.set_level(args.log_level)
    import warnings

    warnings.filterwarnings("ignore", message=".*GetPrototype.*")
    began = time.perf_counter()

    from .models import Registry
    from .service import serve

    token = os.environ.get("TABAGENT_ML_TOKEN") or None
    tls = None
    if args.tls_cert or args.tls_key:
        tls = (Path(args.tls_cert).read_bytes(), Path(args.tls_key).read_bytes())
    host = args.address.rsplit(":", 1)[0].strip("[]")
    loopback = args.address.startswith("unix:") or host in ("127.0.0.1", "localhost", "::1")
    if not loopback and (tls is None or token is None):
        log.error("refusing to listen off loopback without TLS and a token", address=args.address)
        sys.exit(2)
    registry = Registry(Path(args.model_cache) if args.model_cache else None, Path(args.fetch_cache))
    server, address, checker, server_state = serve(args.address, registry, token, tls, args.threads)

    done = threading.Event()
    reason: list[str] = []

    def stop(why: str) -> None:
        if not reason:
            reason.append(why)
        done.set()

    signal.signal(signal.SIGTERM, lambda *_: stop("SIGTERM"))
    if args.lifeline == "stdin":
        # Ctrl-C in a terminal reaches the whole process group: the server decides when we stop.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGINT, lambda *_: stop("SIGINT"))
    if args.lifeline == "stdin":
        threading.Thread(target=_watch_stdin, args=(stop,), daemon=True, name="lifeline").start()
    if args.parent_pid:
        threading.Thread(target=_watch_parent, args=(args.parent_pid, stop), daemon=True, name="parent").start()
    log.info("listening", address=address, pid=os.getpid(), ms=round((time.perf_counter() - began) * 1000, 1))
    # A timed wait, so the main thread runs Python's signal handlers promptly.
    while not done.wait(0.1):
        pass
    log.info("stopping", reason=reason[0] if reason else "")
    checker.enter_graceful_shutdown()
    # Let calls in flight finish (bounded), then exit without grpc's GOAWAY: Deno's HTTP/2 client
    # (nghttp2) can abort the whole server process on a GOAWAY that races closed streams, and the
    # server closes its channel before it asks us to stop anyway.
    deadline = time.monotonic() + 2
    while server_state.in_flight > 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
