"""Where a streamed chat's time goes through the whole request path, for
docs/PERFORMANCE.md. Usage:

    python3 xtask/src/served_path.py PATH/TO/offgrid [PROMPT_WORDS] [ROUNDS]

Starts the release server (single-user, debug timings in its log), warms
it up, then streams ROUNDS chats whose prompt is about PROMPT_WORDS words
(128 greedy tokens each). Per round it measures from outside: time to the
first content chunk, prompt tokens/s up to it, decode tokens/s after it;
and reads the server's own timings of the same request from its log:
until the engine had it (admission, blocking hop, template, tokenizer),
queue wait, prompt read, decode. Prints medians as JSON."""
import json, os, re, statistics, subprocess, sys, tempfile, time, urllib.request
import http.client

binary = sys.argv[1]
words = int(sys.argv[2]) if len(sys.argv) > 2 else 150
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
home = tempfile.mkdtemp(prefix="offgrid-served-")
os.symlink(os.path.expanduser("~/.offgrid-llm/models"), os.path.join(home, "models"))
port = 11797
log_path = os.path.join(home, "server.log")
env = dict(os.environ, OFFGRID_HOME=home, RUST_LOG="warn,offgrid_http=debug", NO_COLOR="1")
log = open(log_path, "w")
p = subprocess.Popen([binary, "serve", "--port", str(port)], env=env, stdout=log, stderr=log)
try:
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health")
            break
        except Exception:
            time.sleep(0.1)
    base_text = ("The lighthouse keeper climbed the stairs every evening and watched "
                 "the sea turn from grey to silver while the ships passed. ")
    per = len(base_text.split())
    text = (base_text * (words // per + 1))
    text = " ".join(text.split()[:words])

    def stream(content, max_tokens):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        body = json.dumps({
            "model": "smollm2-135m-instruct",
            "messages": [{"role": "user", "content": content}],
            "max_tokens": max_tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True},
        })
        sent = time.perf_counter()
        conn.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
        resp = conn.getresponse()
        first = last = None
        usage = None
        pieces = 0
        while True:
            line = resp.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data: ") or line == b"data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                usage = chunk["usage"]
            for c in chunk.get("choices", []):
                if c.get("delta", {}).get("content"):
                    now = time.perf_counter()
                    first = first or now
                    last = now
                    pieces += 1
        conn.close()
        return sent, first, last, usage, pieces

    stream("Say hello.", 8)  # load and warm up
    stream(text, 8)
    timing_re = re.compile(r"generation timings(.*)$")
    rows = []
    for r in range(rounds):
        before = os.path.getsize(log_path)
        sent, first, last, usage, pieces = stream(f"{r}. {text}", 128)
        time.sleep(0.2)
        with open(log_path) as f:
            f.seek(before)
            server = {}
            for line in f:
                m = timing_re.search(line)
                if m:
                    server = dict(re.findall(r"(\w+)=([0-9.]+)", m.group(1)))
        pt, ct = usage["prompt_tokens"], usage["completion_tokens"]
        ttft = (first - sent) * 1000
        row = {
            "prompt_tokens": pt, "completion_tokens": ct,
            "client_ttft_ms": ttft,
            "client_prompt_tps": pt / (ttft / 1000),
            "client_decode_tps": (ct - 1) / (last - first) if last > first else None,
            "server_submit_ms": float(server.get("submit_ms", "nan")),
            "server_queued_ms": float(server.get("queued_ms", "nan")),
            "server_prompt_ms": float(server.get("prompt_ms", "nan")),
            "server_decode_ms": float(server.get("decode_ms", "nan")),
        }
        row["engine_prompt_tps"] = pt / (row["server_prompt_ms"] / 1000)
        row["engine_decode_tps"] = (ct - 1) / (row["server_decode_ms"] / 1000)
        row["outside_engine_ms"] = ttft - row["server_submit_ms"] - row["server_queued_ms"] - row["server_prompt_ms"]
        rows.append(row)
        print(json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items()}), file=sys.stderr)
    med = {k: round(statistics.median(r[k] for r in rows), 2) for k in rows[0] if rows[0][k] is not None}
    print(json.dumps(med))
finally:
    p.terminate()
    p.wait()
