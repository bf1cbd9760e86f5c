// The outcome dashboard (/outcomes/): one card per section of figures (rooms/outcomes.py), each a
// uPlot chart over the range's days with its range-wide figures and, for model use, a table per task.
// The page embeds the first answer; changing the room or the range refetches /api/outcomes/ (the
// same shape) and keeps the URL in step, so a reload or a shared link shows the same view.

import { el } from "../office/lib/dom.js";
import { getJson } from "../office/lib/http.js";
import { formatValue, timeChart } from "../office/lib/chart.js";

const grid = document.getElementById("outcome-grid");
const form = document.getElementById("outcomes-filter");
const heading = document.getElementById("outcomes-heading");
const rangeText = document.getElementById("outcomes-range");
const status = document.getElementById("outcomes-status");

const Y_LABELS = {
  count: "per day", hours: "hours per day", seconds: "median per day", tokens: "tokens per day",
  ms: "latency (ms)", cost: "estimated cost per day",
};

function dayToSeconds(isoDay) {
  return Date.parse(`${isoDay}T00:00:00Z`) / 1000;
}

function renderTable(table) {
  const node = el("table", { class: "outcome-table" });
  const head = el("tr");
  for (const column of table.columns) head.append(el("th", { scope: "col" }, column.label));
  const thead = el("thead");
  thead.append(head);
  node.append(thead);
  const body = el("tbody");
  for (const row of table.rows) {
    const tr = el("tr");
    for (const column of table.columns) {
      const value = row[column.key];
      tr.append(el("td", {}, column.unit ? formatValue(value, column.unit) : String(value ?? "")));
    }
    body.append(tr);
  }
  if (!table.rows.length) {
    const empty = el("tr");
    empty.append(el("td", { colspan: String(table.columns.length), class: "muted" }, "No model calls."));
    body.append(empty);
  }
  node.append(body);
  return node;
}

function renderSection(section, x) {
  const card = el("section", { class: "outcome-card", "data-section": section.key, "aria-labelledby": `h-${section.key}` });
  card.append(el("h2", { class: "subhead", id: `h-${section.key}` }, section.title));
  const figures = el("dl", { class: "outcome-figures" });
  for (const f of section.figures) {
    const item = el("div", { class: "outcome-figure", "data-figure": f.key });
    item.append(el("dt", {}, f.label), el("dd", {}, formatValue(f.value, f.unit)));
    figures.append(item);
  }
  card.append(figures);
  const yLabel = Y_LABELS[section.unit] || section.unit;
  card.append(el("p", { class: "chart-axis-caption" }, yLabel));
  const holder = el("div", { class: "outcome-chart", role: "img", "aria-label": `${section.title}: ${yLabel}` });
  card.append(holder);
  if (section.note) card.append(el("p", { class: "outcome-note" }, section.note));
  if (section.table) card.append(renderTable(section.table));
  grid.append(card);
  // The y axis is named by the caption above it (readable, and the same words as the chart's label).
  timeChart(holder, {
    x, days: true, unit: section.unit, height: 200,
    series: section.series.map((s) => ({ label: s.label, values: s.values })),
  });
}

function render(data) {
  grid.replaceChildren();
  const x = data.days.map(dayToSeconds);
  for (const section of data.sections) renderSection(section, x);
  heading.textContent = `Outcomes: ${data.room ? data.room.name : "every room"}`;
  rangeText.textContent = `${data.since} – ${data.until} (${data.days.length} days)`;
}

function query() {
  const params = new URLSearchParams(new FormData(form));
  for (const [key, value] of [...params]) if (!value) params.delete(key);
  return params;
}

async function refresh() {
  const params = query();
  status.textContent = "Loading…";
  try {
    render(await getJson(`/api/outcomes/?${params}`));
    history.replaceState(null, "", `${location.pathname}?${params}`);
    status.textContent = "";
  } catch (err) {
    status.textContent = "Could not load the figures; try again.";
  }
}

form.addEventListener("change", () => void refresh());
form.addEventListener("submit", (event) => {
  event.preventDefault();
  void refresh();
});
render(JSON.parse(document.getElementById("outcomes-data").textContent));
document.getElementById("outcomes-page").dataset.ready = "1";
