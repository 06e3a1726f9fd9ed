// Benchmark: one standard measurement of a chat model through the same
// engine as every chat (POST /v1/benchmark: administrators, and users when
// the server allows it), and the history of runs as a chart and a table.
import { html, useState } from "../lib.js";
import { get, post } from "../api.js";
import { can, useSession } from "../session.js";
import { LineChart, short } from "../chart.js";
import { ErrorNote, Field, PageHead, useLoad, when } from "../ui.js";

function RunForm({ models, defaultModel, onDone }) {
  const [picked, setModel] = useState("");
  // The list arrives after the first render: the default model until one
  // is picked.
  const model = picked || (models.includes(defaultModel) ? defaultModel : models[0] || "");
  const [promptTokens, setPromptTokens] = useState(256);
  const [maxTokens, setMaxTokens] = useState(64);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [result, setResult] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setResult(null);
    try {
      const run = await post("/v1/benchmark", { model, prompt_tokens: Number(promptTokens), max_tokens: Number(maxTokens) });
      setResult(run);
      onDone();
    } catch (err) {
      setError(err);
    }
    setBusy(false);
  };
  return html`<form class="panel row-form" aria-label="Run a benchmark" onSubmit=${submit}>
    <${Field} label="Model"><select value=${model} onChange=${(e) => setModel(e.target.value)}>${models.map((m) => html`<option value=${m}>${m}</option>`)}</select><//>
    <${Field} label="Prompt tokens" hint="16–2048"><input type="number" min="16" max="2048" required value=${promptTokens} onInput=${(e) => setPromptTokens(e.target.value)} /><//>
    <${Field} label="Tokens to generate" hint="2–512"><input type="number" min="2" max="512" required value=${maxTokens} onInput=${(e) => setMaxTokens(e.target.value)} /><//>
    <button type="submit" class="primary" disabled=${busy || !model}>${busy ? "Running…" : "Run benchmark"}</button>
    ${busy && html`<p class="muted small" role="status">Measuring; it waits its turn in the queue like any chat.</p>`}
    <${ErrorNote} error=${error} />
    ${result &&
    html`<p class="ok-note" role="status">
      ${result.model}: prompt ${short(result.prompt_tps)} tokens/s, decode ${short(result.decode_tps)} tokens/s, first token in ${short(result.ttft_ms)} ms.
    </p>`}
  </form>`;
}

/** The benchmark page. */
export function BenchmarkPage() {
  const { config, me } = useSession();
  const history = useLoad(() => get("/v1/benchmark"), []);
  const models = useLoad(() => get("/v1/models"), []);
  const mayRun = can(me, "manage_models") || (config.features.benchmark_users && can(me, "own_sessions"));
  const runs = ((history.data && history.data.data) || []).slice().reverse();
  const chat = ((models.data && models.data.data) || []).filter((m) => m.type === "chat").map((m) => m.id);
  return html`<div class="page wide">
    <${PageHead} title="Benchmark"><button type="button" onClick=${history.reload}>Refresh</button><//>
    <p class="muted">Prompt reading and generation speed of a model on this machine, measured through the same engine and queue as every chat.</p>
    ${mayRun
      ? html`<${RunForm} models=${chat} defaultModel=${config.default_model} onDone=${history.reload} />`
      : html`<p class="muted">Administrators run benchmarks on this server.</p>`}
    <${ErrorNote} error=${history.error || models.error} />
    ${runs.length > 0 &&
    html`<div class="charts">
      <${LineChart}
        title="Speed by run"
        unit="tokens/s"
        x=${runs.map((r) => r.created_at)}
        xFormat=${(at) => when(at)}
        series=${[
          { label: "prompt", values: runs.map((r) => r.prompt_tps) },
          { label: "decode", values: runs.map((r) => r.decode_tps) },
        ]}
      />
      <${LineChart} title="Time to first token by run" unit="ms" x=${runs.map((r) => r.created_at)} xFormat=${(at) => when(at)} series=${[{ label: "first token", values: runs.map((r) => r.ttft_ms) }]} />
    </div>`}
    <div class="table-wrap" tabindex="0" role="region" aria-label="Benchmark runs">
      <table>
        <caption class="offscreen">Benchmark runs, newest first</caption>
        <thead><tr><th scope="col">When</th><th scope="col">Model</th><th scope="col">Prompt tokens/s</th><th scope="col">Decode tokens/s</th><th scope="col">First token</th><th scope="col">Tokens</th><th scope="col">Machine</th></tr></thead>
        <tbody>
          ${runs
            .slice()
            .reverse()
            .map(
              (r) => html`<tr>
                <td>${when(r.created_at)}</td>
                <th scope="row">${r.model}</th>
                <td>${short(r.prompt_tps)}</td>
                <td>${short(r.decode_tps)}</td>
                <td>${short(r.ttft_ms)} ms</td>
                <td>${r.prompt_tokens} + ${r.generated_tokens}</td>
                <td class="small">${r.cpu} · ${r.threads} threads · ${r.simd}</td>
              </tr>`,
            )}
        </tbody>
      </table>
    </div>
    ${!history.loading && runs.length === 0 && html`<p class="empty">No runs yet.</p>`}
  </div>`;
}
