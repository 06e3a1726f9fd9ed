"""The llama.cpp half of `cargo xtask bench inference`.

Runs llama.cpp (through llama-cpp-python) on the same GGUF file, the same
prompt token ids and the same thread count as OffGrid's bench, and prints
one JSON object with the same keys.

usage: python llamacpp_peer.py MODEL.gguf IDS.json THREADS GEN TTFT_TOKENS REPEAT
"""

import json
import resource
import sys
import time

import llama_cpp


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def main():
    model, ids_path, threads, gen, ttft_tokens, repeat = sys.argv[1:7]
    threads, gen, ttft_tokens, repeat = int(threads), int(gen), int(ttft_tokens), int(repeat)
    with open(ids_path) as f:
        ids = json.load(f)
    t = time.perf_counter()
    llm = llama_cpp.Llama(
        model_path=model,
        n_ctx=1024,
        n_batch=512,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    load_ms = (time.perf_counter() - t) * 1000

    def greedy():
        logits = llm.scores[llm.n_tokens - 1]
        return int(logits.argmax())

    # Warm-up.
    llm.reset()
    llm.eval(ids[:16])
    prompt, decode = [], []
    for _ in range(repeat):
        llm.reset()
        t = time.perf_counter()
        llm.eval(ids)
        prompt.append(len(ids) / (time.perf_counter() - t))
        t = time.perf_counter()
        for _ in range(gen):
            llm.eval([greedy()])
        decode.append(gen / (time.perf_counter() - t))
    ttft = []
    for _ in range(repeat):
        llm.reset()
        t = time.perf_counter()
        llm.eval(ids[:ttft_tokens])
        greedy()
        ttft.append((time.perf_counter() - t) * 1000)
    print(json.dumps({
        "engine": "llama.cpp",
        "version": llama_cpp.__version__,
        "threads": threads,
        "prompt_tokens": len(ids),
        "gen_tokens": gen,
        "load_ms": load_ms,
        "prompt_tps": median(prompt),
        "decode_tps": median(decode),
        "ttft_ms": median(ttft),
        "ttft_tokens": ttft_tokens,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
