# Usage: cargo build && python3 scripts/guard_overhead.py  (BIN=... for another binary)
# Times 400 add_reaction calls over stdio against serve --sandbox, without guard rails and
# with --allow-recipients, --send-budget and --audit-log: the cost of the checks per write.
import json, subprocess, sys, time, statistics, os
BIN = os.environ.get("BIN", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "debug", "lark-mcp-server"))
def run(extra, n=400):
    p = subprocess.Popen([BIN, "serve", "--sandbox"] + extra, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
    def rpc(i, method, params):
        p.stdin.write(json.dumps({"jsonrpc":"2.0","id":i,"method":method,"params":params})+"\n"); p.stdin.flush()
        while True:
            m = json.loads(p.stdout.readline())
            if m.get("id") == i: return m
    rpc(0, "initialize", {"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"b","version":"0"}})
    p.stdin.write(json.dumps({"jsonrpc":"2.0","method":"notifications/initialized"})+"\n"); p.stdin.flush()
    msgs = rpc(1, "tools/call", {"name":"list_messages","arguments":{"chat_id":"oc_565504f375c752f3e721d59fac70afd9","page_size":5}})
    mid = msgs["result"]["structuredContent"]["messages"][0]["message_id"]
    ts = []
    for i in range(n):
        t = time.perf_counter()
        r = rpc(10+i, "tools/call", {"name":"add_reaction","arguments":{"message_id":mid,"emoji":"OK"}})
        ts.append((time.perf_counter()-t)*1000)
        assert not r["result"].get("isError"), r
    p.kill()
    ts.sort()
    return statistics.median(ts), ts[int(len(ts)*0.99)]
base = run([])
log = os.path.join(os.environ.get("TMPDIR", "/tmp"), "lark-guard-overhead.jsonl")
if os.path.exists(log): os.remove(log)
guarded = run(["--allow-recipients","oc_565504f375c752f3e721d59fac70afd9,ou_7d82ab6889beb45bb7911ba8216f1a9e,!oc_a471517295a593ba928002be6ed44c50","--send-budget","1000/h","--audit-log",log])
print(f"add_reaction over stdio, 400 calls: no guard p50 {base[0]:.2f} ms p99 {base[1]:.2f} ms; allow-list+budget+audit p50 {guarded[0]:.2f} ms p99 {guarded[1]:.2f} ms; audit lines {sum(1 for _ in open(log))}")
