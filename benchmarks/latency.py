"""p50/p95 latency of /v1/search and /v1/ask under 1, 4 and 16 concurrent clients.

Against a running server (``make run`` or ``tosei serve``); with ``--start`` it starts one itself
on a free loopback port and stops it afterwards. Each client sends dev-set questions one after
another; request counts are bounded, every address is on this machine.

    python benchmarks/latency.py [--url http://127.0.0.1:8000] [--start] [--requests 80] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


def questions() -> list[str]:
    """Every distinct question of the dev and held-out sets (answerable and not): 231."""
    out: list[str] = []
    for name in ("devset/questions", "devset/unanswerable", "heldout/questions", "heldout/unanswerable"):
        path = ROOT / f"benchmarks/{name}.jsonl"
        if path.exists():
            out += [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line]
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def run(url: str, endpoint: str, concurrency: int, total: int, qs: list[str]) -> dict[str, Any]:
    def one(i: int, client: httpx.Client) -> tuple[float, int]:
        q = qs[i % len(qs)]
        started = time.perf_counter()
        if endpoint == "search":
            r = client.get(f"{url}/v1/search", params={"q": q, "tenant": "hakodate", "k": 5})
        else:
            r = client.post(f"{url}/v1/ask", json={"question": q, "tenant": "hakodate"})
        return (time.perf_counter() - started) * 1000, r.status_code

    latencies: list[float] = []
    errors = 0
    with httpx.Client(timeout=60) as client, ThreadPoolExecutor(max_workers=concurrency) as pool:
        wall = time.perf_counter()
        for ms, status in pool.map(lambda i: one(i, client), range(total)):
            latencies.append(ms)
            errors += status != 200
        wall = time.perf_counter() - wall
    return {
        "endpoint": endpoint,
        "clients": concurrency,
        "requests": total,
        "errors": errors,
        "p50_ms": statistics.median(latencies),
        "p95_ms": percentile(latencies, 0.95),
        "rps": total / wall,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--start", action="store_true", help="start a server for the run")
    parser.add_argument("--requests", type=int, default=80, help="requests per endpoint and concurrency level")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--cold", action="store_true", help="with --start: serve without the query-vector cache")
    args = parser.parse_args()

    server = None
    url = args.url
    if args.start:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        # --cold: no query-vector cache, every question is embedded (the worst case)
        extra = {"TOSEI_QUERY_CACHE_SIZE": "0"} if args.cold else {}
        server = subprocess.Popen(
            [sys.executable, "-m", "assistant.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **extra},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    try:
        deadline = time.time() + 120
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise SystemExit(f"server at {url} is not ready")
            time.sleep(0.5)
        qs = questions()
        # warm-up: the first requests load lazily built parts; with the query cache on, one pass
        # over the questions makes every later request a repeated question
        run(url, "search", 2, len(qs) if not args.cold else 10, qs)
        rows = [
            run(url, endpoint, clients, args.requests, qs) for endpoint in ("search", "ask") for clients in (1, 4, 16)
        ]
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'endpoint':<10}{'clients':>8}{'requests':>9}{'errors':>7}{'p50 ms':>9}{'p95 ms':>9}{'req/s':>8}")
    for r in rows:
        print(
            f"{r['endpoint']:<10}{r['clients']:>8}{r['requests']:>9}{r['errors']:>7}"
            f"{r['p50_ms']:>9.1f}{r['p95_ms']:>9.1f}{r['rps']:>8.1f}"
        )


if __name__ == "__main__":
    main()
