// The sensors page: cards with live state and an inline-SVG chart of recent readings per sensor.
// State comes from /api/iot/overview/ and /api/iot/sensors/<id>/readings/; the socket at
// /ws/iot/sensors/ nudges with new readings and rule firings (reconnects with backoff, and a
// reconnect reloads everything, so a missed nudge costs nothing).

import { el } from "../office/lib/dom.js";
import { formatTime } from "../office/lib/format.js";
import { getJson, loginUrl, ReconnectingSocket } from "../office/lib/http.js";

const SVG = "http://www.w3.org/2000/svg";
const MAX_POINTS = 120;
const PRIMARY = { occupancy: "count", projector: "state", temperature: "celsius", door: "state" };
const LEVELS = { offline: "bad", error: "bad", open: "warn", on: "good", closed: "good", off: "idle" };

const grid = document.getElementById("sensor-grid");
const live = document.getElementById("sensors-live");
const sensors = new Map(); // id -> {sensor, readings, card}

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

function svgNode(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

/** Numbers as a line over time; states (on/off/offline...) as coloured bands. */
function drawChart(svg, kind, readings) {
  svg.replaceChildren();
  const W = 300;
  const H = 70;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("preserveAspectRatio", "none");
  if (!readings.length) {
    const t = svgNode("text", { x: 4, y: H / 2 });
    t.textContent = "no readings yet";
    svg.append(t);
    return;
  }
  const times = readings.map((r) => Date.parse(r.received_at));
  const t0 = times[0];
  const t1 = Math.max(times[times.length - 1], t0 + 1000);
  const x = (t) => ((t - t0) / (t1 - t0)) * (W - 2) + 1;
  const numeric = kind === "temperature" || kind === "occupancy";
  svg.append(svgNode("line", { class: "axis", x1: 0, y1: H - 12, x2: W, y2: H - 12 }));
  if (numeric) {
    const values = readings.map((r) => Number(primaryValue(kind, r.value)));
    let lo = Math.min(...values);
    let hi = Math.max(...values);
    if (kind === "occupancy") lo = Math.min(0, lo);
    if (hi - lo < 1) hi = lo + 1;
    const y = (v) => H - 14 - ((v - lo) / (hi - lo)) * (H - 22);
    const points = values.map((v, i) => `${x(times[i]).toFixed(1)},${y(v).toFixed(1)}`);
    if (points.length === 1) points.push(`${W - 1},${y(values[0]).toFixed(1)}`);
    svg.append(svgNode("polyline", { class: "line", points: points.join(" ") }));
    const top = svgNode("text", { x: 2, y: 9 });
    top.textContent = String(Math.round(hi * 10) / 10);
    const bottom = svgNode("text", { x: 2, y: H - 14 });
    bottom.textContent = String(Math.round(lo * 10) / 10);
    svg.append(top, bottom);
  } else {
    readings.forEach((r, i) => {
      const start = x(times[i]);
      const end = i + 1 < readings.length ? x(times[i + 1]) : W - 1;
      const level = LEVELS[primaryValue(kind, r.value)] || "idle";
      svg.append(svgNode("rect", { class: `band-${level === "warn" ? "bad" : level}`, x: start.toFixed(1), y: 14,
        width: Math.max(1, end - start).toFixed(1), height: H - 28 }));
    });
  }
  const from = svgNode("text", { x: 2, y: H - 2 });
  from.textContent = timeText(readings[0].received_at);
  const to = svgNode("text", { x: W - 2, y: H - 2, "text-anchor": "end" });
  to.textContent = timeText(readings[readings.length - 1].received_at);
  svg.append(from, to);
}

function renderCard(entry) {
  const { sensor } = entry;
  if (!entry.card) {
    entry.card = el("article", { class: "sensor-card", "data-sensor": sensor.id });
    const header = el("header");
    header.append(el("h3", {}, sensor.name), el("span", { class: "sensor-room" }, sensor.room_name || "no room"));
    entry.stateEl = el("div", { class: "sensor-state" });
    entry.seenEl = el("div", { class: "sensor-seen" });
    entry.chart = svgNode("svg", { class: "sensor-chart", role: "img", "aria-label": `Recent readings of ${sensor.name}` });
    entry.card.append(header, entry.stateEl, entry.chart, entry.seenEl);
    grid.append(entry.card);
  }
  const value = sensor.last_state;
  entry.stateEl.textContent = describe(sensor.kind, value);
  entry.stateEl.dataset.level = LEVELS[primaryValue(sensor.kind, value)] || "";
  entry.seenEl.textContent = `${sensor.kind} · ${sensor.device_id} · last seen ${timeText(sensor.last_seen_at)}`;
  drawChart(entry.chart, sensor.kind, entry.readings);
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

async function loadAll() {
  const overview = await getJson("/api/iot/overview/");
  const seen = new Set();
  for (const sensor of overview.sensors) {
    seen.add(sensor.id);
    const entry = sensors.get(sensor.id) || { sensor, readings: [] };
    entry.sensor = sensor;
    sensors.set(sensor.id, entry);
    try {
      entry.readings = (await getJson(`/api/iot/sensors/${sensor.id}/readings/?limit=${MAX_POINTS}`)).readings;
    } catch (err) {
      entry.readings = [];
    }
    renderCard(entry);
  }
  for (const [id, entry] of sensors) {
    if (!seen.has(id)) {
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
  if (entry.readings.length > MAX_POINTS) entry.readings.splice(0, entry.readings.length - MAX_POINTS);
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

loadAll().catch(() => {});
socket.connect();
