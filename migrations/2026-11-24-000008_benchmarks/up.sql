-- Benchmark runs (POST /v1/benchmark): the figures of one measurement
-- through the engine, kept as the history GET /v1/benchmark lists.
CREATE TABLE benchmark_runs (
    id               TEXT   PRIMARY KEY NOT NULL,
    at               BIGINT NOT NULL,
    user_id          TEXT   REFERENCES users (id) ON DELETE SET NULL,
    model            TEXT   NOT NULL,
    prompt_tokens    BIGINT NOT NULL CHECK (prompt_tokens >= 0),
    generated_tokens BIGINT NOT NULL CHECK (generated_tokens >= 0),
    prompt_tps       DOUBLE NOT NULL,
    decode_tps       DOUBLE NOT NULL,
    ttft_ms          DOUBLE NOT NULL,
    cpu              TEXT   NOT NULL,
    threads          BIGINT NOT NULL,
    simd             TEXT   NOT NULL
);
CREATE INDEX benchmark_runs_at ON benchmark_runs (at);
