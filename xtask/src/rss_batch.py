"""Server memory with both default models loaded and eight ~1,000-token
generations running at once (eight users, multi-user mode), for
docs/PERFORMANCE.md. Usage: python3 xtask/src/rss_batch.py PATH/TO/offgrid
(release build; needs `cargo xtask models`). Prints the most generations
seen running at once and the server's peak RSS."""
import json, subprocess, tempfile, threading, time, urllib.request, os, sys
home = tempfile.mkdtemp(prefix="offgrid-rss-")
os.symlink(os.path.expanduser("~/.offgrid-llm/models"), os.path.join(home, "models"))
port = 11799
env = dict(os.environ, OFFGRID_HOME=home, OFFGRID_MULTI_USER="true", OFFGRID_BCRYPT_COST="4", RUST_LOG="warn")
p = subprocess.Popen([sys.argv[1], "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
base = f"http://127.0.0.1:{port}"
for _ in range(100):
    try:
        urllib.request.urlopen(base + "/health"); break
    except Exception: time.sleep(0.1)
def post(path, body, key=None):
    h = {"content-type": "application/json"}
    if key: h["authorization"] = "Bearer " + key
    r = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers=h)
    return json.load(urllib.request.urlopen(r, timeout=600))
post("/v1/auth/setup", {"username": "admin", "password": "admin-password-1"})
admin = post("/v1/auth/login", {"username": "admin", "password": "admin-password-1"})["token"]
keys = [post("/v1/users", {"username": f"u{i}", "password": f"u{i}-password-1", "role": "user"}, admin)["api_key"]["key"] for i in range(8)]
post("/v1/embeddings", {"model": "all-minilm-l6-v2", "input": ["warm up"]}, admin)
text = "The lighthouse keeper climbed the stairs every evening and watched the sea. " * 70
def rss():
    d = {}
    for l in open(f"/proc/{p.pid}/status"):
        if l.startswith(("VmRSS", "VmHWM")): d[l.split(":")[0]] = int(l.split()[1]) // 1024
    return d
peak = [0]
usage = []
def one(i):
    r = post("/v1/completions", {"model": "smollm2-135m-instruct", "prompt": f"{i}. " + text, "max_tokens": 64, "temperature": 0}, keys[i])
    usage.append(r["usage"])
ts = [threading.Thread(target=one, args=(i,)) for i in range(8)]
t0 = time.time()
for t in ts: t.start()
most = 0
while any(t.is_alive() for t in ts):
    try:
        q = json.load(urllib.request.urlopen(urllib.request.Request(base + "/v1/queue", headers={"authorization": "Bearer " + admin})))
        most = max(most, sum(1 for e in q["data"] if e["state"] == "running"))
    except Exception: pass
    peak[0] = max(peak[0], rss()["VmRSS"]); time.sleep(0.05)
print("most running at once", most)
print("prompt tokens", [u["prompt_tokens"] for u in usage], "secs", round(time.time() - t0, 1))
print("RSS during 8 sequences: max sampled", peak[0], "MiB; after", rss())
p.terminate()
