// Time charts on uPlot (vendored in static/vendor/uplot/, no CDN): one line per series over time,
// with axes, the cursor's legend and a tooltip at the cursor. Used by the outcome dashboard
// (static/outcomes/outcomes.js) and the sensors page (static/iot/sensors.js).

import uPlot from "../../vendor/uplot/uPlot.esm.js";

export const COLORS = ["#4f46e5", "#16a34a", "#d97706", "#dc2626", "#0ea5e9", "#8b5cf6", "#64748b"];

/** Durations in seconds as "45 s", "12 min", "3.5 h", "2.1 d". */
export function formatSeconds(value) {
  if (value == null || Number.isNaN(value)) return "–";
  const abs = Math.abs(value);
  if (abs < 90) return `${Math.round(value)} s`;
  if (abs < 90 * 60) return `${round(value / 60)} min`;
  if (abs < 48 * 3600) return `${round(value / 3600)} h`;
  return `${round(value / 86400)} d`;
}

function round(value, digits = 1) {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** How to read a value of `unit` (count, hours, seconds, tokens, ms, cost, or free text). */
export function formatValue(value, unit) {
  if (value == null || Number.isNaN(value)) return unit === "cost" ? "unknown" : "–";
  switch (unit) {
    case "count": return String(round(value, 2));
    case "hours": return `${round(value, 2)} h`;
    case "seconds": return formatSeconds(value);
    case "tokens": return value >= 10000 ? `${round(value / 1000)}k` : String(Math.round(value));
    case "ms": return `${Math.round(value)} ms`;
    case "cost": return round(value, 4).toFixed(4);
    default: return unit ? `${round(value, 2)} ${unit}` : String(round(value, 2));
  }
}

// Tick steps for the y axis by unit (whole counts, durations in round units); others use uPlot's own.
const WHOLE = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7];
const INCRS = {
  count: WHOLE, tokens: WHOLE, ms: WHOLE,
  seconds: [1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800,
    345600, 604800, 1209600, 2592000, 7776000],
};
// The least a y axis spans, so an empty chart still reads sensibly (0 to 1 min, not 0 to 1 s).
const MIN_SPAN = { count: 1, tokens: 10, ms: 100, seconds: 60, hours: 1, cost: 0.01 };

/** A tooltip that follows the cursor with the time and each shown series' value. */
function tooltipPlugin({ formatX, formatY }) {
  let tip;
  return {
    hooks: {
      init: (u) => {
        tip = document.createElement("div");
        tip.className = "chart-tip";
        tip.hidden = true;
        u.over.append(tip);
      },
      setCursor: (u) => {
        const i = u.cursor.idx;
        if (i == null || u.cursor.left < 0) {
          tip.hidden = true;
          return;
        }
        const lines = [formatX(u.data[0][i])];
        u.series.forEach((s, k) => {
          if (k > 0 && s.show) lines.push(`${s.label}: ${formatY(u.data[k][i], k)}`);
        });
        tip.replaceChildren(...lines.map((text, k) => {
          const line = document.createElement(k ? "div" : "strong");
          line.textContent = text;
          return line;
        }));
        tip.hidden = false;
        const left = Math.min(u.cursor.left + 12, Math.max(0, u.over.clientWidth - tip.offsetWidth));
        tip.style.left = `${left}px`;
        tip.style.top = `${Math.max(0, u.cursor.top - tip.offsetHeight - 8)}px`;
      },
    },
  };
}

/**
 * A chart in `container`. `x`: times in unix seconds; `series`: [{label, values, color}]; `unit`
 * formats the y axis, the legend and the tooltip; `yLabel` names the y axis. Options: `days` (x is
 * whole calendar days, shown in UTC as given), `xRange` [min, max] in seconds, `height`, `yValues`
 * (a function of a value giving its axis text, for states), `ySplits` (where its ticks go),
 * `yRange` [min, max], `yZero` (false: the y axis fits the data, as for temperatures), `stepped`,
 * `draw` (a hook drawing under the series, given the uPlot instance).
 * Returns {chart, setData(x, values), setXRange(min, max), destroy()}.
 */
export function timeChart(container, { x, series, unit = "", yLabel = "", days = false, xRange = null, height = 200,
  yValues = null, ySplits = null, stepped = false, draw = null, yRange = null, yZero = true }) {
  const formatY = (v) => (yValues ? yValues(v) : formatValue(v, unit));
  const formatX = days
    ? (t) => new Date(t * 1000).toLocaleDateString([], { timeZone: "UTC", weekday: "short", month: "short", day: "numeric" })
    : (t) => new Date(t * 1000).toLocaleString([], { dateStyle: "medium", timeStyle: "medium" });
  const paths = stepped ? uPlot.paths.stepped({ align: 1 }) : undefined;
  const opts = {
    width: Math.max(240, container.clientWidth || 600),
    height,
    tzDate: days ? (t) => uPlot.tzDate(new Date(t * 1000), "Etc/UTC") : undefined,
    cursor: { drag: { x: true, y: false } },
    scales: {
      x: { time: true, ...(xRange ? { range: () => xRange } : {}) },
      y: yRange ? { range: () => yRange } : yZero ? { range: (u, min, max) => yAuto(min, max, unit) } : {},
    },
    legend: { live: true },
    series: [
      { label: days ? "Day" : "Time", value: (u, t) => (t == null ? "–" : formatX(t)) },
      ...series.map((s, k) => ({
        label: s.label,
        stroke: s.color || COLORS[k % COLORS.length],
        width: 2,
        spanGaps: false,
        points: days ? { show: true, size: 5 } : {},  // otherwise uPlot shows them where the line is sparse
        paths,
        value: (u, v) => formatY(v),
      })),
    ],
    axes: [
      { stroke: "#6b7587", grid: { stroke: "#eef0f4" }, ticks: { stroke: "#e2e6ee" }, space: days ? 50 : 80 },
      {
        stroke: "#6b7587", grid: { stroke: "#eef0f4" }, ticks: { stroke: "#e2e6ee" }, size: 64,
        label: yLabel || undefined, labelSize: yLabel ? 18 : 0, labelFont: "12px system-ui, sans-serif",
        values: (u, splits) => splits.map(formatY),
        ...(ySplits ? { splits: () => ySplits } : {}),
        ...(INCRS[unit] && !ySplits ? { incrs: INCRS[unit] } : {}),
      },
    ],
    hooks: draw ? { drawClear: [draw] } : {},
    plugins: [tooltipPlugin({ formatX, formatY })],
  };
  const chart = new uPlot(opts, [x, ...series.map((s) => s.values)], container);
  const resize = () => chart.setSize({ width: Math.max(240, container.clientWidth || 600), height });
  const observer = typeof ResizeObserver === "function" ? new ResizeObserver(resize) : null;
  observer?.observe(container);
  return {
    chart,
    setData(newX, values) {
      chart.setData([newX, ...values]);
    },
    setXRange(min, max) {
      xRange = [min, max];
      chart.setScale("x", { min, max });
    },
    destroy() {
      observer?.disconnect();
      chart.destroy();
    },
  };
}

/** A y range from 0 (or below, for negatives) with room above the highest value, at least the unit's span. */
function yAuto(min, max, unit) {
  const span = MIN_SPAN[unit] || 1;
  const lo = Math.min(0, min ?? 0);
  const hi = Math.max((max ?? 0) * 1.1, lo + span);
  return [lo, hi];
}
