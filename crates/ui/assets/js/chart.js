// Line charts in plain SVG (no chart library to vendor): a figure with a
// title, axes labelled at their ends, one polyline per series, a legend,
// and the same numbers in a table for screen readers (and for anyone who
// wants the figures rather than the picture).
import { html } from "./lib.js";

const WIDTH = 560;
const HEIGHT = 180;
const PAD = { left: 52, right: 12, top: 10, bottom: 24 };
// Distinguishable in light and dark themes, and for common colour
// blindness (Okabe–Ito).
export const COLORS = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#d55e00", "#56b4e9"];

/** A time (Unix seconds) as hours and minutes. */
export function clock(at) {
  return new Date(at * 1000).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

/** A number for an axis or a table: short, in the reader's locale. */
export function short(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  const abs = Math.abs(n);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : 2;
  return n.toLocaleString(undefined, { maximumFractionDigits: digits });
}

/**
 * A line chart. `series`: [{ label, values: [y or null, …] }] over the
 * shared `x` values (Unix seconds or run numbers); `format` writes a y
 * value; `xFormat` an x value. Gaps (null) break a line.
 */
export function LineChart({ title, x, series, format = short, xFormat = clock, unit = "" }) {
  const ys = series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined && Number.isFinite(v));
  const top = ys.length ? Math.max(...ys) : 0;
  const yMax = top > 0 ? top * 1.1 : 1;
  const n = x.length;
  const px = (i) => PAD.left + (n > 1 ? (i / (n - 1)) * (WIDTH - PAD.left - PAD.right) : (WIDTH - PAD.left - PAD.right) / 2);
  const py = (v) => HEIGHT - PAD.bottom - (v / yMax) * (HEIGHT - PAD.top - PAD.bottom);
  const lines = series.map((s) => {
    const runs = [];
    let run = [];
    s.values.forEach((v, i) => {
      if (v === null || v === undefined || !Number.isFinite(v)) {
        if (run.length) runs.push(run);
        run = [];
      } else run.push(`${px(i).toFixed(1)},${py(v).toFixed(1)}`);
    });
    if (run.length) runs.push(run);
    return runs;
  });
  const id = `chart-${title.replace(/[^a-z0-9]+/gi, "-").toLowerCase()}`;
  return html`<figure class="chart" aria-labelledby=${id}>
    <figcaption id=${id}>${title}${unit ? html` <span class="muted small">(${unit})</span>` : null}</figcaption>
    <svg viewBox=${`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label=${`${title}: ${series.map((s) => s.label).join(", ")}`} preserveAspectRatio="none">
      <line class="axis" x1=${PAD.left} y1=${HEIGHT - PAD.bottom} x2=${WIDTH - PAD.right} y2=${HEIGHT - PAD.bottom} />
      <line class="axis" x1=${PAD.left} y1=${PAD.top} x2=${PAD.left} y2=${HEIGHT - PAD.bottom} />
      <line class="grid" x1=${PAD.left} y1=${py(yMax / 2)} x2=${WIDTH - PAD.right} y2=${py(yMax / 2)} />
      <text class="tick" x=${PAD.left - 6} y=${py(yMax) + 10} text-anchor="end">${format(yMax)}</text>
      <text class="tick" x=${PAD.left - 6} y=${py(yMax / 2) + 4} text-anchor="end">${format(yMax / 2)}</text>
      <text class="tick" x=${PAD.left - 6} y=${HEIGHT - PAD.bottom} text-anchor="end">0</text>
      ${n > 0 && html`<text class="tick" x=${PAD.left} y=${HEIGHT - 6}>${xFormat(x[0])}</text>`}
      ${n > 1 && html`<text class="tick" x=${WIDTH - PAD.right} y=${HEIGHT - 6} text-anchor="end">${xFormat(x[n - 1])}</text>`}
      ${lines.map((runs, k) =>
        runs.map((run) =>
          run.length === 1
            ? html`<circle class="series" data-series=${series[k].label} cx=${run[0].split(",")[0]} cy=${run[0].split(",")[1]} r="2.5" fill=${COLORS[k % COLORS.length]} />`
            : html`<polyline class="series" data-series=${series[k].label} points=${run.join(" ")} fill="none" stroke=${COLORS[k % COLORS.length]} stroke-width="2" />`,
        ),
      )}
    </svg>
    <ul class="legend">
      ${series.map((s, k) => html`<li><span class="swatch" style=${{ background: COLORS[k % COLORS.length] }}></span>${s.label}</li>`)}
    </ul>
    <table class="offscreen">
      <caption>${title}</caption>
      <thead><tr><th scope="col">When</th>${series.map((s) => html`<th scope="col">${s.label}</th>`)}</tr></thead>
      <tbody>${x.map((at, i) => html`<tr><th scope="row">${xFormat(at)}</th>${series.map((s) => html`<td>${format(s.values[i])}</td>`)}</tr>`)}</tbody>
    </table>
  </figure>`;
}
