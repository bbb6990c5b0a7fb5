"""Load on ``edgeship serve`` over loopback, next to in-process ``predict`` timed in the same run.

A fixed number of requests (default 5,000) at concurrency 1, 4 and 16, with JSON and
with binary tensors, to a real server subprocess on 127.0.0.1. The load generator is
an asyncio client on keep-alive connections, one per concurrent request stream, with
the request bytes built once (so the client spends little of the 2 cores). It reports
p50/p99 latency, requests per second and errors, and the same figures with dynamic
batching at concurrency 16. Everything is bounded: a deadline per run, and the server
is stopped (SIGTERM, then SIGKILL) in a finally.

    python benchmarks/serve_load.py --bundle build/digits-small-cnn
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.runtime import load, load_eval

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from serve_helpers import HOST, ServerProcess  # noqa: E402

OUT = Path(__file__).with_name("serve_results.json")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def build_request(model: Any, x: np.ndarray, binary: bool) -> bytes:
    """One complete HTTP/1.1 infer request, keep-alive, as bytes."""
    name = model.inputs[0].public_name
    tensor: dict[str, Any] = {"name": name, "shape": list(x.shape), "datatype": "FP32"}
    headers = "Content-Type: application/json\r\n"
    if binary:
        raw = x.astype(np.float32).tobytes()
        tensor["parameters"] = {"binary_data_size": len(raw)}
        head = json.dumps({"inputs": [tensor], "parameters": {"binary_data_output": True}}).encode()
        body = head + raw
        headers = f"Content-Type: application/octet-stream\r\nInference-Header-Content-Length: {len(head)}\r\n"
    else:
        tensor["data"] = x.reshape(-1).tolist()
        body = json.dumps({"inputs": [tensor]}).encode()
    return (f"POST /v2/models/m/infer HTTP/1.1\r\nHost: {HOST}\r\n{headers}Content-Length: {len(body)}\r\n\r\n"
            .encode() + body)


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def _stream(port: int, request: bytes, count: int, lat: list[float], errors: list[str]) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    clock = time.perf_counter
    try:
        for _ in range(count):
            start = clock()
            writer.write(request)
            try:
                status = await _read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                errors.append(repr(exc))
                writer.close()
                reader, writer = await asyncio.open_connection(HOST, port)
                continue
            lat.append(clock() - start)
            if status != 200:
                errors.append(f"status {status}")
    finally:
        writer.close()


async def _load(port: int, request: bytes, total: int, concurrency: int, deadline_s: float) -> dict[str, Any]:
    lat: list[float] = []
    errors: list[str] = []
    share = [total // concurrency + (1 if i < total % concurrency else 0) for i in range(concurrency)]
    start = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(_stream(port, request, n, lat, errors) for n in share)), deadline_s)
    wall = time.perf_counter() - start
    return {"concurrency": concurrency, "requests": total, "errors": len(errors), "req_per_s": round(total / wall, 1),
            **summary(lat)}


def summary(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 4), "p99_ms": round(float(np.percentile(ms, 99)), 4)}


def in_process(bundle: Path, x: np.ndarray, runs: int, **choice: Any) -> dict[str, float]:
    with load(bundle, **choice) as model:
        for _ in range(200):
            model.predict(x)
        lat = []
        clock = time.perf_counter
        for _ in range(runs):
            start = clock()
            model.predict(x)
            lat.append(clock() - start)
    return summary(lat)


def run_server(bundle: Path, extra: list[str], x: np.ndarray, args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp, \
            ServerProcess([f"m={bundle}", *extra], Path(tmp) / "log") as srv:
        with load(bundle) as model:
            requests = {kind: build_request(model, x, kind == "binary") for kind in ("json", "binary")}
        for kind in args.kinds:
            for c in args.concurrency if not extra else [16]:
                asyncio.run(_load(srv.port, requests[kind], 200, c, 60))  # warm-up
                row = asyncio.run(_load(srv.port, requests[kind], args.requests, c, args.deadline))
                row.update(tensors=kind, server_args=" ".join(extra))
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", default="build/digits-small-cnn", help="bundle folder (make demo builds the default)")
    p.add_argument("--requests", type=int, default=5000)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--kinds", nargs="+", default=["json", "binary"], choices=["json", "binary"])
    p.add_argument("--deadline", type=float, default=300.0, help="seconds allowed per run")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    bundle = Path(args.bundle)
    x = np.ascontiguousarray(load_eval(bundle)[0][:1])
    with load(bundle) as model:
        artifact = {"file": model.path.name, "format": model.format, "precision": model.precision,
                    "engine": model.engine}
    local = in_process(bundle, x, args.requests)
    print(json.dumps({"in_process_predict": local}), flush=True)
    plain = run_server(bundle, [], x, args)
    batched = run_server(bundle, ["--max-batch-size", "16", "--batch-delay-us", "500"], x, args)
    for row in plain + batched:
        row["extra_p50_ms_over_predict"] = round(row["p50_ms"] - local["p50_ms"], 4)
    result = {"machine": {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "system": platform.system(),
                          "python": platform.python_version()},
              "bundle": bundle.name, "artifact": artifact, "batch_per_request": 1, "in_process_predict": local,
              "server": plain, "dynamic_batching": batched,
              "client": "asyncio, keep-alive connections, one per concurrent stream, same machine"}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
