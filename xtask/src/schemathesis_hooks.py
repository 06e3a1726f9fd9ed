"""Schemathesis hooks for `cargo xtask schemathesis`.

Generation stays as the schema says, except that completions are kept
short: an integer `max_tokens` / `max_completion_tokens` above 16 is
lowered to 16, and one is added when the body gives none. Without this a
single request may decode thousands of tokens (the default is 512, the
model's context 8192) and a CI-sized run would take hours on two cores.
The same for Ollama's `options.num_predict` on /api/generate and /api/chat,
and for /v1/benchmark's `prompt_tokens` and `max_tokens` (kept in range).
Only values the schema allows are touched, so negative cases stay negative.
"""

import schemathesis

CAP = 16
SLOW = {"/v1/chat/completions", "/v1/completions"}
FIELDS = ("max_tokens", "max_completion_tokens")


OLLAMA = {"/api/generate", "/api/chat"}


def cap_ollama(body):
    """Ollama's length is `options.num_predict` (-1, -2 or absent: the
    server's default, 512): capped the same way."""
    options = body.get("options")
    if options is None:
        body["options"] = {"num_predict": CAP}
    elif isinstance(options, dict):
        value = options.get("num_predict")
        if not isinstance(value, int) or isinstance(value, bool) or value > CAP or value < 1:
            if value is None or isinstance(value, int) and not isinstance(value, bool):
                options["num_predict"] = CAP


def cap_benchmark(body):
    """A benchmark's sizes, within their allowed ranges: small (the server
    under test is a debug build)."""
    for field, low, high, cap in (("prompt_tokens", 16, 2048, 32), ("max_tokens", 2, 512, 4)):
        value = body.get(field)
        if value is None:
            body[field] = cap
        elif isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            # Out-of-range values stay: negative cases stay negative.
            body[field] = min(value, cap)


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.operation.path == "/v1/benchmark" and case.operation.method.upper() == "POST" \
            and isinstance(case.body, dict):
        cap_benchmark(case.body)
        return
    if case.operation.path in OLLAMA and isinstance(case.body, dict):
        cap_ollama(case.body)
        return
    if case.operation.path not in SLOW or not isinstance(case.body, dict):
        return
    body = case.body
    present = [f for f in FIELDS if f in body]
    for field in present:
        value = body[field]
        if isinstance(value, int) and not isinstance(value, bool) and value > CAP:
            body[field] = CAP
    if not present:
        body["max_tokens"] = CAP
