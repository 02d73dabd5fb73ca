"""Throughput and latency of the example model server (examples/model-server/server.py): POST /predict
with one iris row, at 1 and 8 concurrent keep-alive clients (http.client), each level bounded to
LEVEL_SECONDS or LEVEL_REQUESTS, whichever comes first. The server runs as its own process on a free
127.0.0.1 port and is stopped (SIGTERM, its graceful drain) at the end.

From the 8-client throughput follows the ALBRequestCountPerTarget target (requests a minute per task):

    target = requests/s at 8 clients x 60 x headroom      (headroom 0.5-0.7: scale out before saturation)

shown next to `requests_per_target` from pipeline.toml. The figure is for one core of this machine; a
Fargate task with cpu = 512 has half a vCPU, so the line below also scales it by cpu/1024 (assuming a
vCPU of this machine is worth one of Fargate's). Prints a table; asserts nothing.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "examples" / "model-server" / "server.py"
BODY = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()
HEADERS = {"Content-Type": "application/json"}
LEVELS = (1, 8)
LEVEL_SECONDS = 3.0
LEVEL_REQUESTS = 20_000  # per level, across all clients
WARMUP_REQUESTS = 50
HEADROOMS = (0.5, 0.6, 0.7)
START_TIMEOUT = 15.0
BURSTS = 3
BURST_CONNECTIONS = 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(port: int, process: subprocess.Popen[bytes]) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < START_TIMEOUT:
        if process.poll() is not None:
            raise RuntimeError(f"the model server exited with {process.returncode} before it was healthy")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/health")
            status = conn.getresponse().status
            conn.close()
            if status == 200:
                return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"the model server was not healthy within {START_TIMEOUT:.0f}s")


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Level:
    """`clients` threads, one keep-alive connection each, sharing one request budget and one deadline."""

    def __init__(self, port: int, clients: int) -> None:
        self.port = port
        self.clients = clients
        self.lock = threading.Lock()
        self.issued = 0
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def _take(self) -> bool:
        with self.lock:
            if self.issued >= LEVEL_REQUESTS:
                return False
            self.issued += 1
            return True

    def run(self, server_pid: int) -> dict[str, float]:
        barrier = threading.Barrier(self.clients + 1)
        deadline_box: list[float] = []  # set just before the barrier opens: every client starts together
        threads = []

        def client() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.connect()  # connection setup is measured on its own (connect_burst), not here
            except OSError as exc:
                with self.lock:
                    self.errors.append(type(exc).__name__)
            barrier.wait()
            self._client_loop(conn, deadline_box[0])

        for _ in range(self.clients):
            threads.append(threading.Thread(target=client, daemon=True))
        for t in threads:
            t.start()
        cpu_before = process_cpu_seconds(server_pid)
        began = time.perf_counter()
        deadline = began + LEVEL_SECONDS
        deadline_box.append(deadline)
        barrier.wait()
        for t in threads:
            t.join(timeout=LEVEL_SECONDS + 30)
        elapsed = time.perf_counter() - began
        cpu = process_cpu_seconds(server_pid) - cpu_before
        done = sorted(self.latencies)
        return {
            "requests": len(done),
            "seconds": elapsed,
            "rps": len(done) / elapsed if elapsed else 0.0,
            "p50": percentile(done, 50),
            "p99": percentile(done, 99),
            "max": done[-1] if done else float("nan"),
            "errors": len(self.errors),
            "server_cpu": cpu / elapsed if elapsed else 0.0,
        }

    def _client_loop(self, conn: http.client.HTTPConnection, deadline: float) -> None:
        mine: list[float] = []
        try:
            while time.perf_counter() < deadline and self._take():
                began = time.perf_counter()
                try:
                    conn.request("POST", "/predict", body=BODY, headers=HEADERS)
                    response = conn.getresponse()
                    payload = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    with self.lock:
                        self.errors.append(type(exc).__name__)
                    conn.close()  # http.client reconnects on the next request
                    continue
                mine.append(time.perf_counter() - began)
                if response.status != 200 or b"predictions" not in payload:
                    with self.lock:
                        self.errors.append(f"HTTP {response.status}")
        finally:
            conn.close()
            with self.lock:
                self.latencies.extend(mine)


def connect_burst(port: int) -> list[float]:
    """BURSTS times: BURST_CONNECTIONS new connections at once (as a load balancer opens them when
    traffic jumps), each timing connect + GET /health; the slowest of each burst."""
    worst = []
    for _ in range(BURSTS):
        times: list[float] = []
        lock = threading.Lock()

        def one(times: list[float] = times, lock: threading.Lock = lock) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            began = time.perf_counter()
            try:
                conn.request("GET", "/health")
                conn.getresponse().read()
                with lock:
                    times.append(time.perf_counter() - began)
            except (OSError, http.client.HTTPException):
                with lock:
                    times.append(float("inf"))
            finally:
                conn.close()

        threads = [threading.Thread(target=one, daemon=True) for _ in range(BURST_CONNECTIONS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=15)
        worst.append(max(times) if times else float("inf"))
        time.sleep(0.2)
    return worst


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def warm_up(port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for _ in range(WARMUP_REQUESTS):
            conn.request("POST", "/predict", body=BODY, headers=HEADERS)
            conn.getresponse().read()
    finally:
        conn.close()


def configured() -> tuple[int | None, int | None]:
    try:
        from pipeline import config

        service = config.load(ROOT / "pipeline.toml").service
        return service.requests_per_target, service.cpu
    except Exception:  # noqa: BLE001 - a benchmark prints what it can
        return None, None


def main() -> None:
    port = free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "MODEL_DRAIN_SECONDS": "2",
        "PYTHONUNBUFFERED": "1",
    }
    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryFile() as log:  # the server logs every request, as it does in a task
        process = subprocess.Popen([sys.executable, str(SERVER)], env=env, stdout=log, stderr=log, cwd=SERVER.parent)
        try:
            ready = wait_healthy(port, process)
            warm_up(port)
            for clients in LEVELS:
                results[clients] = Level(port, clients).run(process.pid)
            bursts = connect_burst(port)
        finally:
            process.terminate()  # SIGTERM: the server drains (nothing in flight) and exits 0
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)

    print(
        f"model server: python {sys.version.split()[0]}, 127.0.0.1:{port}, healthy {ready:.2f}s after start, {os.cpu_count()} CPUs here"
    )
    header = f"{'clients':>7} {'requests':>9} {'seconds':>8} {'req/s':>8} {'p50':>8} {'p99':>8} {'max':>8} {'errors':>7} {'server CPU':>11}"
    print(header)
    print("-" * len(header))
    for clients, r in results.items():
        print(
            f"{clients:>7} {r['requests']:>9.0f} {r['seconds']:>7.2f}s {r['rps']:>8.0f} {r['p50'] * 1000:>6.2f}ms "
            f"{r['p99'] * 1000:>6.2f}ms {r['max'] * 1000:>6.1f}ms {r['errors']:>7.0f} {r['server_cpu'] * 100:>10.0f}%"
        )
    print(
        f"bounds: {LEVEL_SECONDS:.0f}s or {LEVEL_REQUESTS} requests per level; connections opened before timing; server exit code {process.returncode}"
    )
    print(
        f"connection burst ({BURST_CONNECTIONS} new connections at once, connect + GET /health), slowest per burst: "
        + ", ".join(f"{w * 1000:.0f}ms" for w in bursts)
        + ("  (over 1 s: SYNs dropped and retried; the server listens with backlog 5)" if max(bursts) > 1 else "")
    )

    rps = results[max(LEVELS)]["rps"]
    if results[max(LEVELS)]["server_cpu"] < 0.9:
        print(
            f"server CPU under 90% at {max(LEVELS)} clients: the clients (threads of one Python process, sharing "
            f"{os.cpu_count()} CPUs with the server) limit the figure; one task sustains at least this much"
        )
    per_target, cpu = configured()
    print()
    print("ALBRequestCountPerTarget target = req/s at 8 clients x 60 x headroom (requests a minute per task)")
    print(f"{'headroom':>9} {'this core':>12} {'Fargate cpu=' + str(cpu) if cpu else 'Fargate':>16}")
    share = (cpu / 1024) if cpu else 1.0
    for headroom in HEADROOMS:
        here = rps * 60 * headroom
        print(f"{headroom:>9.1f} {here:>12,.0f} {here * share:>16,.0f}")
    if per_target is not None:
        low = rps * 60 * HEADROOMS[0] * share
        print(
            f"pipeline.toml requests_per_target = {per_target}: "
            f"{per_target / low:.3f} of the most cautious figure above ({low:,.0f}); "
            f"{'conservative (scales out long before saturation)' if per_target <= low else 'ABOVE what one task sustains'}"
        )


if __name__ == "__main__":
    main()
