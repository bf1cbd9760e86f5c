// The sensors page: cards with live state and a uPlot chart of recent readings per sensor (axes,
// tooltips, drag to zoom, and a time range for the whole page: the latest readings, or the last hour,
// day or week). State comes from /api/iot/overview/ and /api/iot/sensors/<id>/readings/; the socket at
// /ws/iot/sensors/ nudges with new readings and rule firings (reconnects with backoff, and a
// reconnect reloads everything, so a missed nudge costs nothing).

import { el } from "../office/lib/dom.js";
import { formatTime } from "../office/lib/format.js";
import { getJson, loginUrl, ReconnectingSocket } from "../office/lib/http.js";
import { timeChart } from "../office/lib/chart.js";

const MAX_POINTS = 120;
const RANGE_MAX_POINTS = 1000;
const PRIMARY = { occupancy: "count", projector: "state", temperature: "celsius", door: "state" };
const LEVELS = { offline: "bad", error: "bad", open: "warn", on: "good", closed: "good", off: "idle" };
const BAND_COLORS = { bad: "rgba(220, 38, 38, .28)", warn: "rgba(220, 38, 38, .28)", good: "rgba(22, 163, 74, .25)",
  idle: "rgba(138, 147, 165, .25)" };
// States top to bottom on a state chart's axis; others follow in the order they are seen.
const STATE_ORDER = ["on", "open", "closed", "off", "error", "offline"];
const RANGES = { latest: null, hour: 3600, day: 86400, week: 7 * 86400 };

const grid = document.getElementById("sensor-grid");
const live = document.getElementById("sensors-live");
const rangePicker = document.getElementById("sensor-range");
const sensors = new Map(); // id -> {sensor, readings, card, chart, states}
let range = "latest";

function primaryValue(kind, value) {
  if (!value) return null;
  if (kind === "occupancy") return value.count ?? (value.present ? 1 : 0);
  return value[PRIMARY[kind]];
}

function describe(kind, value) {
  const v = primaryValue(kind, value);
  if (v == null) return "no data yet";
  if (kind === "temperature") return `${Number(v).toFixed(1)} °C`;
  if (kind === "occupancy") return value.count != null ? `${v} ${v === 1 ? "person" : "people"}` : v ? "occupied" : "empty";
  return String(v);
}

function timeText(iso) {
  return iso ? formatTime(iso, { seconds: true }) : "never";
}

function rangeStart() {
  const span = RANGES[range];
  return span ? Date.now() / 1000 - span : null;
}

/** The states a state chart shows, bottom (index 0) to top. */
function statesOf(kind, readings) {
  const seen = new Set(readings.map((r) => String(primaryValue(kind, r.value))));
  const known = STATE_ORDER.filter((s) => seen.has(s));
  const other = [...seen].filter((s) => !STATE_ORDER.includes(s)).sort();
  return [...known, ...other].reverse();
}

/** Coloured bands under a state chart, one per reading until the next (as the old sparkline did). */
function stateBands(entry) {
  return (u) => {
    const { readings } = entry;
    const kind = entry.sensor.kind;
    const { ctx } = u;
    const { left, top, width, height } = u.bbox;
    ctx.save();
    readings.forEach((r, i) => {
      const t = Date.parse(r.received_at) / 1000;
      const next = i + 1 < readings.length ? Date.parse(readings[i + 1].received_at) / 1000 : u.scales.x.max;
      const x0 = Math.max(left, u.valToPos(t, "x", true));
      const x1 = Math.min(left + width, u.valToPos(next, "x", true));
      if (x1 <= x0) return;
      ctx.fillStyle = BAND_COLORS[LEVELS[primaryValue(kind, r.value)] || "idle"];
      ctx.fillRect(x0, top, x1 - x0, height);
    });
    ctx.restore();
  };
}

/** Numbers as a line over time; states (on/off/offline...) as a stepped line over coloured bands. */
function drawChart(entry) {
  const { sensor, readings } = entry;
  const kind = sensor.kind;
  const holder = entry.chartEl;
  const numeric = kind === "temperature" || kind === "occupancy";
  const x = readings.map((r) => Date.parse(r.received_at) / 1000);
  const start = rangeStart();
  // A time range shows all of it; the latest readings are shown edge to edge (a minute either side of
  // a lone reading, so it is not squeezed onto one pixel).
  let xRange = start ? [start, Date.now() / 1000] : null;
  if (!xRange && x.length) xRange = x[x.length - 1] - x[0] < 60 ? [x[0] - 60, x[x.length - 1] + 60] : [x[0], x[x.length - 1]];
  const states = numeric ? null : statesOf(kind, readings);
  const values = numeric
    ? readings.map((r) => Number(primaryValue(kind, r.value)))
    : readings.map((r) => states.indexOf(String(primaryValue(kind, r.value))));
  const shape = `${range}|${states ? states.join(",") : ""}`;
  if (entry.chart && entry.shape === shape && readings.length) {
    entry.chart.setXRange(...xRange);
    entry.chart.setData(x, [values]);
    return;
  }
  entry.chart?.destroy();
  entry.chart = null;
  entry.shape = shape;
  holder.replaceChildren();
  holder.dataset.range = range;
  if (!readings.length) {
    holder.append(el("p", { class: "sensor-chart-empty" }, start ? "no readings in this range" : "no readings yet"));
    return;
  }
  const label = kind === "temperature" ? "°C" : kind === "occupancy" ? "people" : "state";
  entry.chart = timeChart(holder, {
    x, xRange, height: 150, yLabel: label,
    series: [{ label: kind === "temperature" ? "Temperature" : kind === "occupancy" ? "Occupancy" : "State", values }],
    unit: kind === "temperature" ? "°C" : kind === "occupancy" ? "count" : "",
    yZero: kind !== "temperature",
    ...(numeric ? {} : {
      stepped: true, yRange: [-0.5, states.length - 0.5], ySplits: states.map((_, i) => i),
      yValues: (v) => (v == null ? "–" : states[Math.round(v)] ?? ""), draw: stateBands(entry),
    }),
  });
}

function renderCard(entry) {
  const { sensor } = entry;
  if (!entry.card) {
    entry.card = el("article", { class: "sensor-card", "data-sensor": sensor.id });
    const header = el("header");
    header.append(el("h3", {}, sensor.name), el("span", { class: "sensor-room" }, sensor.room_name || "no room"));
    entry.stateEl = el("div", { class: "sensor-state" });
    entry.seenEl = el("div", { class: "sensor-seen" });
    entry.chartEl = el("div", { class: "sensor-chart", role: "img", "aria-label": `Recent readings of ${sensor.name}` });
    entry.card.append(header, entry.stateEl, entry.chartEl, entry.seenEl);
    grid.append(entry.card);
  }
  const value = sensor.last_state;
  entry.stateEl.textContent = describe(sensor.kind, value);
  entry.stateEl.dataset.level = LEVELS[primaryValue(sensor.kind, value)] || "";
  entry.seenEl.textContent = `${sensor.kind} · ${sensor.device_id} · last seen ${timeText(sensor.last_seen_at)}`;
  drawChart(entry);
}

function renderList(listEl, items, text, emptyText) {
  listEl.replaceChildren();
  if (!items.length) {
    listEl.append(el("li", { class: "muted" }, emptyText));
    return;
  }
  for (const item of items) {
    const li = el("li", {}, text(item));
    li.append(el("time", { datetime: item.fired_at }, timeText(item.fired_at)));
    listEl.append(li);
  }
}

function readingsUrl(sensorId) {
  const start = rangeStart();
  if (!start) return `/api/iot/sensors/${sensorId}/readings/?limit=${MAX_POINTS}`;
  const since = new Date(start * 1000).toISOString();
  return `/api/iot/sensors/${sensorId}/readings/?limit=${RANGE_MAX_POINTS}&since=${encodeURIComponent(since)}`;
}

async function loadAll() {
  const overview = await getJson("/api/iot/overview/");
  const seen = new Set();
  for (const sensor of overview.sensors) {
    seen.add(sensor.id);
    const entry = sensors.get(sensor.id) || { sensor, readings: [] };
    entry.sensor = sensor;
    sensors.set(sensor.id, entry);
    try {
      entry.readings = (await getJson(readingsUrl(sensor.id))).readings;
    } catch (err) {
      entry.readings = [];
    }
    renderCard(entry);
  }
  for (const [id, entry] of sensors) {
    if (!seen.has(id)) {
      entry.chart?.destroy();
      entry.card?.remove();
      sensors.delete(id);
    }
  }
  const suggestions = overview.suggestions || [];
  document.getElementById("suggestions-card").hidden = !suggestions.length;
  renderList(document.getElementById("suggestions"), suggestions,
    (s) => `${s.room_name || "A room"}: ${s.outcome}`, "None.");
  renderList(document.getElementById("firings"), overview.firings || [],
    (f) => `${f.rule} — ${f.room_name || "no room"}: ${f.outcome}${f.ticket ? ` (ticket #${f.ticket})` : ""}`, "None yet.");
}

function onReading(frame) {
  const entry = sensors.get(frame.sensor);
  if (!entry) return void loadAll();
  entry.readings.push(frame.reading);
  const start = rangeStart();
  if (start) entry.readings = entry.readings.filter((r) => Date.parse(r.received_at) / 1000 >= start);
  const keep = start ? RANGE_MAX_POINTS : MAX_POINTS;
  if (entry.readings.length > keep) entry.readings.splice(0, entry.readings.length - keep);
  entry.sensor.last_state = frame.reading.value;
  entry.sensor.last_seen_at = frame.reading.received_at;
  renderCard(entry);
  entry.card.classList.add("flash");
  setTimeout(() => entry.card.classList.remove("flash"), 600);
}

function setLive(state) {
  live.dataset.state = state;
  live.textContent = state === "connected" ? "live" : state;
}

const socket = new ReconnectingSocket("/ws/iot/sensors/", {
  backoff: { minMs: 500, maxMs: 15000, jitter: 0 },
  onState: setLive,
  onFrame: (frame) => {
    if (frame.type === "hello" || frame.type === "rule.fired") loadAll().catch(() => {});
    else if (frame.type === "sensor.reading") onReading(frame);
  },
  onClose: (e) => {
    if (e.code !== 4401) return true;
    location.href = loginUrl();
    return false;
  },
});

rangePicker?.addEventListener("change", (event) => {
  range = event.target.value in RANGES ? event.target.value : "latest";
  loadAll().catch(() => {});
});

loadAll()
  .catch(() => {})
  .finally(() => {
    document.getElementById("sensors-page").dataset.ready = "1";
  });
socket.connect();
