// Questions and catch-up: asking through the streamed endpoint (server-sent events), and rendering
// answers as they are written, with numbered citation links and sources, and "catch me up" replies.

import { el, link } from "../lib/dom.js";
import { formatDateTime } from "../lib/format.js";
import { apiRequest, csrfToken, jsonResult } from "../lib/http.js";

/** One server-sent event block ("event: x\ndata: {...}") as its JSON data, or null. */
function parseSseBlock(block) {
  const data = block.split("\n").filter((line) => line.startsWith("data:")).map((line) => line.slice(5).trim()).join("\n");
  if (!data) return null;
  try {
    const event = JSON.parse(data);
    return event && typeof event.type === "string" ? event : null;
  } catch (err) {
    return null;
  }
}

/**
 * Read a server-sent event stream from `url` (fetch, so that it can POST and so that nothing reconnects
 * by itself as EventSource would). `onEvent` gets each event before `done` as it arrives. Resolves like
 * apiRequest, with `data` the `done` event's body; or null when the stream failed before any event
 * (not connected, a server error, no stream), so that the caller can ask the plain endpoint instead.
 */
async function readEventStream(url, { method = "GET", body, onEvent = () => {} } = {}) {
  const headers = { Accept: "text/event-stream" };
  const init = { method, credentials: "same-origin", headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    headers["X-CSRFToken"] = csrfToken();
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (err) {
    return null;
  }
  const type = res.headers.get("Content-Type") || "";
  if (res.status >= 400 && res.status < 500) return jsonResult(res); // the server's own refusal: say why
  if (!res.ok || !type.startsWith("text/event-stream") || !res.body) return null;
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let seen = 0;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = parseSseBlock(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
        if (!event) continue;
        seen += 1;
        if (event.type === "done") {
          reader.cancel().catch(() => {});
          const { type: _type, ...data } = event;
          return { ok: true, status: 200, data, message: "" };
        }
        if (event.type === "error") {
          reader.cancel().catch(() => {});
          return { ok: false, status: 400, data: null, message: event.message || "The request was refused." };
        }
        onEvent(event);
      }
    }
  } catch (err) {
    /* the connection broke: below */
  }
  if (!seen) return null;
  return { ok: false, status: 0, data: null, message: "The answer was cut off; try again in a moment." };
}

/**
 * Ask through POST /api/assistant/ask/stream/: `onEvent` gets each `sources` and `delta` event; resolves
 * with the `done` answer, or null when the caller should ask through the job endpoint (`jobAnswer`).
 */
export function askStream(body, { onEvent = () => {} } = {}) {
  return readEventStream("/api/assistant/ask/stream/", { method: "POST", body, onEvent });
}

/**
 * Catch up on a room through GET /api/rooms/<id>/catch-up/stream/: `onEvent` gets the `events` event
 * (what happened, with the counted summary) and each `delta` of the model's summary; resolves with the
 * `done` catch-up, or null when the caller should use the job endpoint (`jobAnswer`).
 */
export function catchUpStream(roomId, { onEvent = () => {} } = {}) {
  return readEventStream(`/api/rooms/${Number(roomId)}/catch-up/stream/`, { onEvent });
}

const JOB_WAIT_S = 10; // the server holds each request at most this long (on its event loop)
const JOB_GIVE_UP_MS = 180000;

function withWait(url) {
  return `${url}${url.includes("?") ? "&" : "?"}wait=${JOB_WAIT_S}`;
}

/**
 * The answer of an endpoint that answers through a job (POST /api/assistant/ask/, GET
 * /api/rooms/<id>/catch-up/; docs/adr/0015): asked with `?wait=`, then the job's result URL long-polled
 * until it is done. Resolves like apiRequest, with `data` the answer itself.
 */
export async function jobAnswer(url, { method = "GET", body } = {}) {
  let r = await apiRequest(withWait(url), { method, body });
  const started = Date.now();
  for (;;) {
    const data = r.data || {};
    if (r.ok && r.status === 200 && data.job === undefined) return r; // the answer itself
    if (r.ok && r.status === 200) {
      if (data.status === "done") return { ok: true, status: 200, data: data.result || {}, message: "" };
      return { ok: false, status: 500, data: null, message: data.error || "The assistant could not answer right now." };
    }
    const pending = r.status === 202 || r.status === 504;
    if (!pending || !data.result_url || Date.now() - started > JOB_GIVE_UP_MS) {
      return pending ? { ok: false, status: 504, data: null, message: "The assistant is taking too long; try again later." } : r;
    }
    r = await apiRequest(withWait(data.result_url));
  }
}

/** Text with "[n]" turned into links to the n-th citation (unknown numbers stay plain text). */
export function withCitationLinks(answer, citations) {
  const text = String(answer || "");
  const byN = new Map((citations || []).map((c) => [Number(c.n), c]));
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const m of text.matchAll(/\[(\d+)\]/g)) {
    const c = byN.get(Number(m[1]));
    if (!c) continue;
    if (m.index > last) frag.append(text.slice(last, m.index));
    const ref = c.url ? link(c.url, `[${c.n}]`, "cite") : el("span", "cite", `[${c.n}]`);
    if (c.label) ref.title = c.label;
    frag.append(ref);
    last = m.index + m[0].length;
  }
  if (last < text.length) frag.append(text.slice(last));
  return frag;
}

function sourcesList(citations) {
  const ol = el("ol", "answer-sources");
  ol.setAttribute("aria-label", "Sources");
  for (const c of citations || []) {
    const li = el("li");
    li.value = Number(c.n) || 0;
    li.dataset.n = String(c.n);
    const label = c.label || c.kind || "source";
    li.append(c.url ? link(c.url, label, "answer-source") : el("span", "answer-source", label));
    if (c.text) {
      const quote = el("span", "answer-quote", c.text.length > 160 ? `${c.text.slice(0, 160)}…` : c.text);
      li.append(quote);
    }
    ol.append(li);
  }
  return ol;
}

/** Empty `box` and show it; a failed request is rendered as its message (returns null). */
export function openResultBox(box, result) {
  box.replaceChildren();
  box.hidden = false;
  box.removeAttribute("aria-busy");
  if (!result.ok) {
    box.dataset.state = "error";
    box.append(el("p", "answer-error", result.message));
    return null;
  }
  return result.data || {};
}

/**
 * Show the answer as the model writes it (plain text with a "…" typing mark); `renderAnswer` replaces
 * it with the checked answer and its citation links. The box is busy meanwhile, so a screen reader
 * announces the finished answer once instead of every word.
 */
export function renderPartialAnswer(box, text) {
  let partial = box.querySelector(".answer-partial-text");
  if (!partial) {
    box.replaceChildren();
    box.hidden = false;
    box.dataset.state = "streaming";
    box.setAttribute("aria-busy", "true");
    const p = el("p", "answer-text answer-partial");
    partial = el("span", "answer-partial-text");
    const typing = el("span", "answer-typing", "…");
    typing.setAttribute("aria-hidden", "true");
    p.append(partial, typing);
    box.append(p);
  }
  partial.textContent = String(text || "");
}

/** Render an answer (the `done` body or the job's result, or a failed request) into `box`. */
export function renderAnswer(box, result) {
  const data = openResultBox(box, result);
  if (!data) return;
  const citations = Array.isArray(data.citations) ? data.citations : [];
  if (data.unavailable) {
    box.dataset.state = "unavailable";
    box.append(el("p", "answer-unavailable", "No model answered just now, so there is no written answer."));
    if (citations.length) {
      box.append(el("p", "answer-note", "The closest passage this room knows:"));
      box.append(sourcesList(citations));
    }
    return;
  }
  if (!data.found) {
    box.dataset.state = "not-found";
    box.append(el("p", "answer-not-found", data.answer || "I could not find this."));
    return;
  }
  box.dataset.state = "answered";
  const p = el("p", "answer-text");
  p.append(withCitationLinks(data.answer || "", citations));
  box.append(p);
  if (citations.length) box.append(sourcesList(citations));
}

function eventHref(event) {
  if (event.url) return event.url;
  if (event.kind === "action_item" && event.item && event.item.meeting != null) return `/meetings/${Number(event.item.meeting)}/`;
  return "";
}

function eventNode(event) {
  const li = el("li", "catch-up-event");
  li.dataset.kind = event.kind || "";
  li.dataset.n = String(event.n);
  const href = eventHref(event);
  li.append(href ? link(href, event.text || event.kind) : el("span", null, event.text || event.kind));
  const when = formatDateTime(event.at);
  if (when) li.append(el("span", "catch-up-when", when));
  return li;
}

/**
 * Render a catch-up (the `done` body, or a failed request) into `box`. With `writing`, the events are
 * shown while the model still writes the summary: the counted summary stands in for it, marked as such,
 * and `renderCatchUpSummary` replaces it as the model's words arrive.
 */
export function renderCatchUp(box, result, { writing = false } = {}) {
  const data = openResultBox(box, result);
  if (!data) return;
  const events = Array.isArray(data.events) ? data.events : [];
  box.dataset.state = writing ? "streaming" : data.unavailable ? "unavailable" : data.source || "model";
  if (writing) box.setAttribute("aria-busy", "true");
  const summary = el("p", "catch-up-summary", data.summary || "");
  box.append(summary);
  if (writing) {
    summary.prepend(el("span", "notes-fallback", "Counted"), " ");
    summary.append(" ", el("span", "answer-pending", "Writing a summary…"));
  } else if (data.source === "fallback") {
    const mark = el("span", "notes-fallback", "Fallback summary");
    mark.title = "Counted from the room's history without a model";
    summary.prepend(mark, " ");
  }
  const highlights = new Set((data.highlights || []).map(Number));
  const top = events.filter((e) => highlights.has(Number(e.n)));
  if (top.length) {
    box.append(el("h4", "notes-subhead", "Highlights"));
    const ul = el("ul", "catch-up-events catch-up-highlights");
    for (const e of top) ul.append(eventNode(e));
    box.append(ul);
  }
  if (events.length) {
    const details = el("details", "catch-up-all");
    details.append(el("summary", null, `Everything since ${formatDateTime(data.since)} (${events.length})`));
    const ul = el("ul", "catch-up-events");
    for (const e of events) ul.append(eventNode(e));
    details.append(ul);
    box.append(details);
  }
}

/** The model's summary so far, in place of the counted one (plain text with a "…" typing mark). */
export function renderCatchUpSummary(box, text) {
  const summary = box.querySelector(".catch-up-summary");
  if (!summary) return;
  const typing = el("span", "answer-typing", "…");
  typing.setAttribute("aria-hidden", "true");
  summary.replaceChildren(el("span", "catch-up-partial-text", String(text || "")), typing);
}
