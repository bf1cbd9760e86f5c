// Meeting notes: which summary to show (pickSummary) and rendering one (summary, decisions, open
// questions, topics), shared by the office panel and the meeting page.

import { el } from "../lib/dom.js";
import { formatDateTime } from "../lib/format.js";

/** The summary to show: the final one if the meeting ended, else the latest rolling one. */
export function pickSummary(current, incoming) {
  if (!incoming) return current || null;
  if (!current) return incoming;
  if (current.kind === "final" && incoming.kind !== "final") return current;
  if (incoming.kind === "final" && current.kind !== "final") return incoming;
  return Number(incoming.id) >= Number(current.id) ? incoming : current;
}

function listSection(title, values, className) {
  const items = (Array.isArray(values) ? values : []).filter((v) => String(v || "").trim());
  if (!items.length) return null;
  const wrap = el("div", `notes-section ${className}`);
  wrap.append(el("h4", "notes-subhead", title));
  const ul = el("ul", "notes-list");
  for (const value of items) ul.append(el("li", null, value));
  wrap.append(ul);
  return wrap;
}

/** Fill `container` with a summary payload (or `emptyText`). Fallback notes are marked as such. */
export function renderNotes(container, summary, emptyText = "No notes yet: they appear a minute or so after people start talking.") {
  container.replaceChildren();
  if (!summary) {
    container.dataset.source = "none";
    container.append(el("p", "notes-empty", emptyText));
    return;
  }
  container.dataset.source = summary.source || "model";
  container.dataset.kind = summary.kind || "";
  container.dataset.summaryId = String(summary.id);
  const head = el("div", "notes-head");
  head.append(el("span", `notes-kind notes-kind-${summary.kind === "final" ? "final" : "rolling"}`,
    summary.kind === "final" ? "Final notes" : "Live notes"));
  if (summary.source === "fallback") {
    const mark = el("span", "notes-fallback", "Fallback notes");
    mark.title = "No model answered: these notes were extracted from the transcript by simple rules";
    head.append(mark);
  }
  const when = el("span", "notes-when", `${formatDateTime(summary.created_at)}${summary.through_seq ? ` · through #${summary.through_seq}` : ""}`);
  head.append(when);
  container.append(head, el("p", "notes-summary", summary.summary || ""));
  for (const section of [
    listSection("Decisions", summary.decisions, "notes-decisions"),
    listSection("Open questions", summary.open_questions, "notes-questions"),
  ]) {
    if (section) container.append(section);
  }
  const topics = (Array.isArray(summary.topics) ? summary.topics : []).filter(Boolean);
  if (topics.length) {
    const ul = el("ul", "notes-topics");
    ul.setAttribute("aria-label", "Topics");
    for (const t of topics) ul.append(el("li", null, t));
    container.append(ul);
  }
}
