#!/usr/bin/env python3
"""Side-by-side figures: this server vs the official @larksuiteoapi/lark-mcp, both pointed
at one standalone sandbox. Standard library only. Run through scripts/bench-vs-official.sh,
which installs the official server and builds ours first.

Every figure is measured the same way for both servers: same sandbox, same driver, same
Lark endpoint behind the compared tools (contact/v3/users/batch_get_id for the lookup,
im/v1/messages for the message list).
"""

import argparse
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import http.client
import urllib.request

APP_ID = "cli_a5f2c8e91b3d4007"
APP_SECRET = "sbx_7Qm2Vn9Lr4Tx8Kp1Wd6Hs3Jc5Fb0Ga"
EMAILS = ["zhang.wei@northwind.example", "ma.chao@northwind.example"]
PROTO = "2025-06-18"
INIT = {
    "protocolVersion": PROTO,
    "capabilities": {},
    "clientInfo": {"name": "bench-vs-official", "version": "0"},
}


class Server:
    """How to start one server and call its equivalent tools."""

    def __init__(self, name, stdio_cmd, http_cmd, env, lookup, list_messages):
        self.name = name
        self.stdio_cmd = stdio_cmd
        self.http_cmd = http_cmd  # (port) -> argv, or None
        self.env = env
        self.lookup = lookup  # (name, arguments)
        self.list_messages = list_messages  # (chat_id) -> (name, arguments)


# ---------------------------------------------------------------- stdio


class Stdio:
    def __init__(self, server, env_extra=None):
        env = dict(server.env)
        env.update(env_extra or {})
        self.started = time.perf_counter()
        self.p = subprocess.Popen(
            server.stdio_cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self.next_id = 0

    def send(self, obj):
        self.p.stdin.write((json.dumps(obj) + "\n").encode())
        self.p.stdin.flush()

    def request(self, method, params=None):
        self.next_id += 1
        rid = self.next_id
        msg = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError(f"server closed stdout waiting for {method}")
            try:
                v = json.loads(line)
            except ValueError:
                continue  # not protocol: a stray log line would be the server's bug
            if v.get("id") == rid:
                return v

    def handshake(self):
        self.request("initialize", INIT)
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return self.request("tools/list")

    def call(self, name, args):
        return self.request("tools/call", {"name": name, "arguments": args})

    def status_kb(self, field):
        try:
            with open(f"/proc/{self.p.pid}/status") as f:
                for line in f:
                    if line.startswith(field):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def cpu_ms(self):
        """User + system CPU time the server has used: steadier than wall time on a busy
        machine."""
        try:
            with open(f"/proc/{self.p.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def spawn_median(server, runs, env_extra=None):
    times = []
    for _ in range(runs):
        s = Stdio(server, env_extra)
        r = s.handshake()
        times.append((time.perf_counter() - s.started) * 1000)
        s.close()
        if "result" not in r:
            raise RuntimeError(f"{server.name}: tools/list failed: {r}")
    return statistics.median(times), times


def is_error(r):
    return "result" not in r or r["result"].get("isError") is True


def stdio_calls(server, calls):
    s = Stdio(server)
    s.handshake()
    name, args = server.lookup
    lat = []
    errors = 0
    cpu0 = s.cpu_ms()
    for _ in range(calls):
        t = time.perf_counter()
        r = s.call(name, args)
        lat.append((time.perf_counter() - t) * 1000)
        errors += is_error(r)
    cpu = s.cpu_ms() - cpu0
    hwm = s.status_kb("VmHWM:")
    rss = s.status_kb("VmRSS:")
    anon = s.status_kb("RssAnon:")
    file_ = s.status_kb("RssFile:")
    threads = s.status_kb("Threads:")
    s.close()
    lat.sort()
    return {
        "p50": lat[len(lat) // 2],
        "p99": lat[int(len(lat) * 0.99) - 1],
        "hwm_kb": hwm,
        "rss_kb": rss,
        "anon_kb": anon,
        "file_kb": file_,
        "threads": threads,
        "errors": errors,
        "cpu_ms_per_call": cpu / calls,
    }


def tool_surface(server):
    s = Stdio(server)
    r = s.handshake()
    s.close()
    tools = r["result"]["tools"]
    total = 0
    for t in tools:
        seen = {k: t.get(k) for k in ("name", "description", "inputSchema")}
        total += len(json.dumps(seen, ensure_ascii=False, separators=(",", ":")).encode())
    return len(tools), total


def message_output(server, chat_id):
    s = Stdio(server)
    s.handshake()
    name, args = server.list_messages(chat_id)
    r = s.call(name, args)
    s.close()
    if is_error(r):
        return None, f"{name} failed: {json.dumps(r)[:300]}"
    res = r["result"]
    text = sum(len(c.get("text", "").encode()) for c in res.get("content", []))
    full = len(json.dumps(res, ensure_ascii=False, separators=(",", ":")).encode())
    return (text, full), None


# ---------------------------------------------------------------- HTTP


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, deadline=15.0):
    end = time.time() + deadline
    while time.time() < end:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def parse_body(resp, body):
    ctype = resp.getheader("Content-Type", "")
    if "text/event-stream" in ctype:
        out = None
        for line in body.decode(errors="replace").splitlines():
            if line.startswith("data:"):
                data = line[5:].strip()
                if data:
                    try:
                        v = json.loads(data)
                    except ValueError:
                        continue
                    if "id" in v:
                        out = v
        return out
    if not body:
        return None
    return json.loads(body)


class HttpClient:
    def __init__(self, port, stateless):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.session = None
        self.next_id = 0
        if not stateless:
            self.post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INIT})
            self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def post(self, msg):
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": PROTO,
        }
        if self.session:
            headers["Mcp-Session-Id"] = self.session
        self.conn.request("POST", "/mcp", json.dumps(msg), headers)
        resp = self.conn.getresponse()
        body = resp.read()
        sid = resp.getheader("Mcp-Session-Id")
        if sid:
            self.session = sid
        if resp.status >= 300:
            raise RuntimeError(f"HTTP {resp.status}: {body[:200]!r}")
        return parse_body(resp, body)

    def call(self, name, args):
        self.next_id += 1
        return self.post(
            {
                "jsonrpc": "2.0",
                "id": self.next_id,
                "method": "tools/call",
                "params": {"name": name, "arguments": args},
            }
        )


def http_worker(port, stateless, name, args, threads, seconds, q):
    ok = [0]
    bad = [0]
    lock = threading.Lock()
    start = threading.Barrier(threads + 1)
    stop_at = [0.0]

    def run():
        try:
            c = HttpClient(port, stateless)
        except Exception:  # noqa: BLE001 - counted as a failed client
            start.wait()
            with lock:
                bad[0] += 1
            return
        start.wait()
        n = e = 0
        while time.perf_counter() < stop_at[0]:
            try:
                r = c.call(name, args)
                if r is None or is_error(r):
                    e += 1
                else:
                    n += 1
            except Exception:  # noqa: BLE001
                e += 1
                c = HttpClient(port, stateless)
        with lock:
            ok[0] += n
            bad[0] += e

    ts = [threading.Thread(target=run) for _ in range(threads)]
    for t in ts:
        t.start()
    stop_at[0] = time.perf_counter() + seconds
    start.wait()
    for t in ts:
        t.join()
    q.put((ok[0], bad[0]))


def http_rate(port, stateless, lookup, clients, seconds):
    """Calls/s with `clients` concurrent keep-alive connections; client processes so the
    GIL is not the measurement (2 processes: the machine has 2 cores, shared with the server)."""
    procs = min(2, clients)
    per = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    q = multiprocessing.Queue()
    ps = [
        multiprocessing.Process(
            target=http_worker, args=(port, stateless, lookup[0], lookup[1], n, seconds, q)
        )
        for n in per
    ]
    t = time.perf_counter()
    for p in ps:
        p.start()
    res = [q.get(timeout=seconds + 60) for _ in ps]
    for p in ps:
        p.join()
    elapsed = time.perf_counter() - t
    ok = sum(r[0] for r in res)
    bad = sum(r[1] for r in res)
    # The window is `seconds` per client; connection set-up happens before it.
    return ok / seconds, bad, elapsed


def http_bench(server, levels, seconds, stateless):
    port = free_port()
    p = subprocess.Popen(
        server.http_cmd(port),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=server.env,
    )
    try:
        if not wait_port(port, p):
            return None, "HTTP server did not start"
        out = {}
        for n in levels:
            rate, bad, _ = http_rate(port, stateless, server.lookup, n, seconds)
            out[n] = (rate, bad)
        hwm = 0
        try:
            with open(f"/proc/{p.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        hwm = int(line.split()[1])
        except OSError:
            pass
        return (out, hwm), None
    finally:
        p.terminate()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


# ---------------------------------------------------------------- sandbox


def start_sandbox(binary, options):
    p = subprocess.Popen(
        [binary, "sandbox", "--port", "0", "--options", json.dumps(options)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    line = p.stdout.readline().decode()
    # "sandbox listening on http://127.0.0.1:PORT (app_id …)"
    url = next((w for w in line.split() if w.startswith("http")), None)
    if not url:
        p.kill()
        raise RuntimeError(f"sandbox did not print its URL: {line!r}")
    return p, url


def busiest_chat(base, want):
    with urllib.request.urlopen(f"{base}/_sandbox/messages") as r:
        msgs = json.load(r)
    if isinstance(msgs, dict):
        msgs = msgs.get("messages") or msgs.get("items") or []
    counts = {}
    for m in msgs:
        c = m.get("chat_id")
        if c:
            counts[c] = counts.get(c, 0) + 1
    if not counts:
        return None, 0
    best = max(counts, key=counts.get)
    return best, counts[best]


# ---------------------------------------------------------------- report


def fmt(v, unit="", nd=1):
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    return f"{v:,.{nd}f}{unit}"


def ratio(ours, theirs, higher_better):
    if not isinstance(ours, (int, float)) or not isinstance(theirs, (int, float)):
        return "n/a"
    if ours == 0 or theirs == 0:
        return "n/a"
    r = ours / theirs if higher_better else theirs / ours
    return f"{r:,.1f}x"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", required=True)
    ap.add_argument("--official", required=True, help="path to the official dist/cli.js")
    ap.add_argument("--scratch", required=True)
    ap.add_argument("--spawns", type=int, default=11)
    ap.add_argument("--official-spawns", type=int, default=5)
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--latency-ms", type=int, default=200)
    a = ap.parse_args()

    scratch = a.scratch
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    base_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        # Fresh, private HOME/XDG dirs: no stored profile or caches of the person running
        # this, and the official server's log files land here too.
        "HOME": scratch,
        "XDG_CACHE_HOME": os.path.join(scratch, "cache"),
        "XDG_CONFIG_HOME": os.path.join(scratch, "config"),
        "XDG_DATA_HOME": os.path.join(scratch, "data"),
        "XDG_STATE_HOME": os.path.join(scratch, "state"),
        "RUST_LOG": "error",
    }

    sb, base = start_sandbox(a.ours, {"qps_limit_per_endpoint": 0, "record_limit": 100})
    slow, slow_base = start_sandbox(
        a.ours,
        {"qps_limit_per_endpoint": 0, "record_limit": 100, "latency_ms": a.latency_ms},
    )
    try:
        run(a, base, slow_base, base_env)
    finally:
        for p in (sb, slow):
            p.terminate()
            p.wait()


def servers(a, base, base_env):
    ours_env = dict(base_env, LARK_APP_ID=APP_ID, LARK_APP_SECRET=APP_SECRET)
    ours = Server(
        "ours",
        [a.ours, "serve", "--domain", base],
        lambda port: [a.ours, "serve", "--domain", base, "--http", "--port", str(port)],
        ours_env,
        ("lookup_user_by_email", {"emails": EMAILS}),
        lambda chat: ("list_messages", {"chat_id": chat, "page_size": 20}),
    )
    official = Server(
        "official",
        ["node", a.official, "mcp", "-a", APP_ID, "-s", APP_SECRET, "-d", base],
        lambda port: [
            "node", a.official, "mcp", "-a", APP_ID, "-s", APP_SECRET, "-d", base,
            "-m", "streamable", "--host", "127.0.0.1", "-p", str(port),
        ],
        dict(base_env),
        (
            "contact_v3_user_batchGetId",
            {"data": {"emails": EMAILS}, "params": {"user_id_type": "open_id"}},
        ),
        lambda chat: (
            "im_v1_message_list",
            {"params": {"container_id_type": "chat", "container_id": chat, "page_size": 20}},
        ),
    )
    return ours, official


def run(a, base, slow_base, base_env):
    ours, official = servers(a, base, base_env)
    rows = []  # (metric, ours, official, ratio)
    t0 = time.perf_counter()

    size = os.path.getsize(a.ours) / 1e6
    rows.append(("release binary (MB)", fmt(size, nd=1), "n/a (node + 109 MB node_modules)", ""))

    # Start against a fast Lark.
    mo, _ = spawn_median(ours, a.spawns)
    mf, _ = spawn_median(official, a.official_spawns)
    rows.append(
        (f"spawn -> tools/list answered, median (ms) [{a.spawns}/{a.official_spawns} runs]",
         fmt(mo, nd=1), fmt(mf, nd=1), ratio(mo, mf, False))
    )

    # Start against a Lark with real latency: first run (no cache) and later runs.
    slow_ours, slow_official = servers(a, slow_base, base_env)
    cache = os.path.join(a.scratch, "cache")
    shutil.rmtree(cache, ignore_errors=True)
    first, _ = spawn_median(slow_ours, 1)
    later, _ = spawn_median(slow_ours, 5)
    mfs, _ = spawn_median(slow_official, 3)
    rows.append(
        (f"same, Lark +{a.latency_ms} ms latency, first run ever (ms)",
         fmt(first, nd=1), fmt(mfs, nd=1), ratio(first, mfs, False))
    )
    rows.append(
        (f"same, Lark +{a.latency_ms} ms latency, later runs, median of 5 (ms)",
         fmt(later, nd=1), fmt(mfs, nd=1), ratio(later, mfs, False))
    )

    # 1,000 stdio calls: latency and peak RSS.
    so = stdio_calls(ours, a.calls)
    sf = stdio_calls(official, a.calls)
    rows.append((f"peak RSS after {a.calls} stdio calls, VmHWM (MB)",
                 fmt(so["hwm_kb"] / 1024, nd=1), fmt(sf["hwm_kb"] / 1024, nd=1),
                 ratio(so["hwm_kb"], sf["hwm_kb"], False)))
    rows.append(("  RSS now: heap+stacks (RssAnon) / mapped binary+libs (RssFile) (MB), threads",
                 f"{so['anon_kb'] / 1024:.1f} / {so['file_kb'] / 1024:.1f}, {so['threads']}",
                 f"{sf['anon_kb'] / 1024:.1f} / {sf['file_kb'] / 1024:.1f}, {sf['threads']}", ""))
    rows.append(("stdio call p50 (ms)", fmt(so["p50"], nd=2), fmt(sf["p50"], nd=2),
                 ratio(so["p50"], sf["p50"], False)))
    rows.append(("stdio call p99 (ms)", fmt(so["p99"], nd=2), fmt(sf["p99"], nd=2),
                 ratio(so["p99"], sf["p99"], False)))
    rows.append(("stdio server CPU per call (ms, user+sys)", fmt(so["cpu_ms_per_call"], nd=3),
                 fmt(sf["cpu_ms_per_call"], nd=3),
                 ratio(so["cpu_ms_per_call"], sf["cpu_ms_per_call"], False)))
    rows.append(("stdio call errors", str(so["errors"]), str(sf["errors"]), ""))

    # HTTP.
    levels = [1, 16, 64]
    ho, eo = http_bench(ours, levels, a.seconds, stateless=False)
    hf, ef = http_bench(official, levels, a.seconds, stateless=True)
    for n in levels:
        vo = ho[0][n][0] if ho else None
        vf = hf[0][n][0] if hf else None
        bo = ho[0][n][1] if ho else 0
        bf = hf[0][n][1] if hf else 0
        rows.append((f"HTTP calls/s, {n} client(s)",
                     fmt(vo, nd=0) if ho else f"n/a ({eo})",
                     fmt(vf, nd=0) if hf else f"n/a ({ef})",
                     ratio(vo, vf, True)))
        if bo or bf:
            rows.append((f"  failed HTTP calls, {n} client(s)", str(bo), str(bf), ""))
    rows.append(("HTTP server peak RSS after the 64-client run (MB)",
                 fmt(ho[1] / 1024, nd=1) if ho else "n/a",
                 fmt(hf[1] / 1024, nd=1) if hf else "n/a",
                 ratio(ho[1], hf[1], False) if ho and hf else "n/a"))

    # What the model reads.
    no, bo_ = tool_surface(ours)
    nf, bf_ = tool_surface(official)
    rows.append(("tools/list as the model sees it (name+description+inputSchema, bytes)",
                 f"{bo_:,} ({no} tools)", f"{bf_:,} ({nf} tools)", ratio(bo_, bf_, False)))

    chat, count = busiest_chat(base, 20)
    if chat and count >= 20:
        ro, erro = message_output(ours, chat)
        rf, errf = message_output(official, chat)
        rows.append(("list_messages, 20 messages: content text bytes",
                     fmt(ro[0], nd=0) if ro else f"n/a ({erro})",
                     fmt(rf[0], nd=0) if rf else f"n/a ({errf})",
                     ratio(ro[0], rf[0], False) if ro and rf else "n/a"))
        rows.append(("list_messages, 20 messages: whole result JSON bytes",
                     fmt(ro[1], nd=0) if ro else "n/a",
                     fmt(rf[1], nd=0) if rf else "n/a",
                     ratio(ro[1], rf[1], False) if ro and rf else "n/a"))
    else:
        rows.append(("list_messages, 20 messages", f"n/a (busiest chat has {count})", "n/a", ""))

    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows + [("", "ours")])
    w2 = max(len(r[2]) for r in rows + [("", "", "official 0.5.1")])
    print(f"{'metric':<{w0}}  {'ours':>{w1}}  {'official 0.5.1':>{w2}}  advantage")
    for r in rows:
        print(f"{r[0]:<{w0}}  {r[1]:>{w1}}  {r[2]:>{w2}}  {r[3]}")
    print(f"(bench took {time.perf_counter() - t0:.0f} s; advantage = how many times better ours is)")


if __name__ == "__main__":
    main()
