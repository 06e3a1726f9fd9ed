"""Runs POST /v1/benchmark against a fresh release server, for
docs/PERFORMANCE.md. Usage: python3 xtask/src/bench_api.py PATH/TO/offgrid [RUNS]
Prints one JSON line per run (256 prompt tokens asked, 128 generated)."""
import json, os, subprocess, sys, tempfile, time, urllib.request
binary = sys.argv[1]
home = tempfile.mkdtemp(prefix="offgrid-benchapi-")
os.symlink(os.path.expanduser("~/.offgrid-llm/models"), os.path.join(home, "models"))
port = 11798
p = subprocess.Popen([binary, "serve", "--port", str(port)], env=dict(os.environ, OFFGRID_HOME=home, RUST_LOG="warn"),
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health"); break
        except Exception:
            time.sleep(0.1)
    def run(pt, mt):
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/benchmark",
            data=json.dumps({"prompt_tokens": pt, "max_tokens": mt}).encode(), headers={"content-type": "application/json"})
        return json.load(urllib.request.urlopen(req, timeout=600))
    run(32, 4)  # load
    for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 3):
        r = run(256, 128)
        print(json.dumps({k: r[k] for k in ["prompt_tokens", "generated_tokens", "prompt_tps", "decode_tps", "ttft_ms", "threads", "simd"]}))
finally:
    p.terminate(); p.wait()
