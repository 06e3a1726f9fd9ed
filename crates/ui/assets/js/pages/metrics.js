// Metrics (administrators, multi-user mode): the last hour of the
// server's Prometheus metrics as charts, refreshed every interval:
// requests, tokens per second, queue depth, latency percentiles and each
// user's tokens.
import { html, useEffect } from "../lib.js";
import { get } from "../api.js";
import { LineChart, short } from "../chart.js";
import { ErrorNote, PageHead, useLoad } from "../ui.js";

/** Most users drawn in the usage chart; the rest are summed. */
const TOP_USERS = 5;

const ms = (seconds) => (seconds === null || seconds === undefined ? null : seconds * 1000);

function Tile({ label, value }) {
  return html`<div class="tile"><span class="tile-value">${value}</span><span class="tile-label">${label}</span></div>`;
}

/** Tokens per user per interval: the heaviest users, then "others". */
function usageSeries(points) {
  const totals = new Map();
  for (const p of points) for (const u of p.users) totals.set(u.user, (totals.get(u.user) || 0) + u.tokens);
  const top = [...totals.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, TOP_USERS).map(([u]) => u);
  const series = top.map((user) => ({
    label: user,
    values: points.map((p) => (p.users.find((u) => u.user === user) || { tokens: 0 }).tokens),
  }));
  if (totals.size > top.length) {
    series.push({
      label: "~others",
      values: points.map((p) => p.users.filter((u) => !top.includes(u.user)).reduce((n, u) => n + u.tokens, 0)),
    });
  }
  return series;
}

/** The metrics page. */
export function MetricsPage() {
  const history = useLoad(() => get("/v1/metrics/history"), []);
  const every = (history.data && history.data.interval_seconds) || 10;
  useEffect(() => {
    const timer = setInterval(history.reload, every * 1000);
    return () => clearInterval(timer);
  }, [every]);
  const points = (history.data && history.data.points) || [];
  const x = points.map((p) => p.at);
  const last = points[points.length - 1];
  const hour = points.reduce((acc, p) => ({ requests: acc.requests + p.requests, tokens: acc.tokens + p.generated_tokens }), { requests: 0, tokens: 0 });
  const users = usageSeries(points);
  return html`<div class="page wide">
    <${PageHead} title="Metrics"><button type="button" onClick=${history.reload}>Refresh</button><//>
    <p class="muted">The last hour, every ${every} seconds, from the same figures as <a href="/metrics">/metrics</a> (Prometheus). A restart starts afresh.</p>
    <${ErrorNote} error=${history.error} />
    ${last &&
    html`<div class="tiles" role="group" aria-label="Now">
      <${Tile} label="tokens/s now" value=${short(last.tokens_per_second)} />
      <${Tile} label="running" value=${last.running} />
      <${Tile} label="queued" value=${last.queued} />
      <${Tile} label="models loaded" value=${last.models_loaded} />
      <${Tile} label="requests this hour" value=${hour.requests} />
      <${Tile} label="tokens this hour" value=${hour.tokens} />
    </div>`}
    ${points.length > 0 &&
    html`<div class="charts">
      <${LineChart} title="Requests" unit="per interval" x=${x} series=${[
        { label: "requests", values: points.map((p) => p.requests) },
        { label: "errors (5xx)", values: points.map((p) => p.errors) },
      ]} />
      <${LineChart} title="Tokens per second" unit="generated" x=${x} series=${[{ label: "tokens/s", values: points.map((p) => p.tokens_per_second) }]} />
      <${LineChart} title="Queue depth" x=${x} series=${[
        { label: "running", values: points.map((p) => p.running) },
        { label: "queued", values: points.map((p) => p.queued) },
      ]} />
      <${LineChart} title="Time to first token" unit="ms" x=${x} series=${["p50", "p95", "p99"].map((q) => ({ label: q, values: points.map((p) => ms(p.time_to_first_token[q])) }))} />
      <${LineChart} title="Inter-token latency" unit="ms" x=${x} series=${["p50", "p95", "p99"].map((q) => ({ label: q, values: points.map((p) => ms(p.inter_token_latency[q])) }))} />
      <${LineChart} title="Request duration" unit="ms" x=${x} series=${["p50", "p95", "p99"].map((q) => ({ label: q, values: points.map((p) => ms(p.duration[q])) }))} />
      ${users.length > 0
        ? html`<${LineChart} title="Tokens by user" unit="per interval" x=${x} series=${users} />`
        : html`<p class="empty">No usage by user yet (or metrics_per_user is off).</p>`}
    </div>`}
  </div>`;
}
