// The meeting assistant in the browser: live notes of the meeting in my room, proposed action items
// (approve / edit / reject), questions answered with numbered citations, "catch me up", and one calm
// line when no model answers. The rendering helpers are shared with the meeting page.

export const UNAVAILABLE_TEXT = "Assistant unavailable — notes resume when the model is back";
const STATUS_POLL_MS = 30000;
const STATUS_RETRY_MIN_MS = 3000; // after a failed call, but not more often than this
const OPEN_KEY = "office.assistant.open";

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

/** Only links within the office or to http(s) pages (a source's URL is data, never script). */
export function safeHref(href) {
  const value = String(href || "");
  if (value.startsWith("#") || (value.startsWith("/") && !value.startsWith("//"))) return value;
  try {
    const url = new URL(value, location.href);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : "";
  } catch (err) {
    return "";
  }
}

function link(href, text, className) {
  const safe = safeHref(href);
  if (!safe) return el("span", className, text);
  const a = el("a", className, text);
  a.href = safe;
  return a;
}

function clock(iso) {
  const d = iso ? new Date(iso) : null;
  if (!d || Number.isNaN(d.getTime())) return "";
  return d.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

function shortDate(isoDate) {
  const d = isoDate ? new Date(`${isoDate}T12:00:00`) : null;
  if (!d || Number.isNaN(d.getTime())) return String(isoDate || "");
  return d.toLocaleDateString([], { weekday: "short", month: "short", day: "numeric" });
}

// --- HTTP ---

export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  if (match) return decodeURIComponent(match[1]);
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

/** A JSON request that never throws: {ok, status, data, message}; `message` is the server's own 4xx text. */
export async function apiRequest(url, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
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
    return { ok: false, status: 0, data: null, message: "Not connected right now; try again in a moment." };
  }
  return jsonResult(res);
}

async function jsonResult(res) {
  let data = null;
  try {
    data = await res.json();
  } catch (err) {
    data = null;
  }
  if (res.ok) return { ok: true, status: res.status, data, message: "" };
  const error = data && data.error;
  const message = (error && error.message) || (res.status >= 500
    ? "The assistant could not answer right now."
    : `The request was refused (HTTP ${res.status}).`);
  return { ok: false, status: res.status, data, message, code: error && error.code };
}

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
 * Ask through POST /api/assistant/ask/stream/ (server-sent events; EventSource cannot POST, so fetch
 * reads the body). `onEvent` gets each `sources` and `delta` event as it arrives. Resolves like
 * apiRequest, with `data` the `done` event's answer; or null when the stream failed before any event
 * (not connected, a server error, no stream), so that the caller can ask the plain endpoint instead.
 */
export async function askStream(body, { onEvent = () => {} } = {}) {
  let res;
  try {
    res = await fetch("/api/assistant/ask/stream/", {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "text/event-stream", "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body),
    });
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
          return { ok: false, status: 400, data: null, message: event.message || "The question was refused." };
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

/** Which model tiers answer: {down: [tier...], all: bool} or null when the status itself failed. */
export async function assistantStatus() {
  const r = await apiRequest("/api/assistant/status/");
  if (!r.ok || !r.data || typeof r.data.tiers !== "object") return null;
  const tiers = Object.entries(r.data.tiers);
  const down = tiers.filter(([, t]) => t && t.available === false).map(([name]) => name);
  return { down, all: tiers.length > 0 && down.length === tiers.length };
}

// --- notes ---

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
  const when = el("span", "notes-when", `${clock(summary.created_at)}${summary.through_seq ? ` · through #${summary.through_seq}` : ""}`);
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

// --- action items ---

const STATUS_WORD = { approved: "Approved", rejected: "Rejected", proposed: "Proposed" };

/**
 * A list of action items with Approve / Edit / Reject. Decisions go to the REST endpoint; the reply
 * (or a live `assistant.action_item` frame) re-renders the item. A 409 means someone else decided
 * first: the list is reloaded through `reload`.
 */
export class ActionItemList {
  constructor({ listEl, countEl = null, members = () => [], segmentHref, meetingHref = null, reload = async () => {},
    onFailure = () => {}, announce = () => {}, emptyText = "No action items proposed yet." }) {
    this.listEl = listEl;
    this.countEl = countEl;
    this.members = members;
    this.segmentHref = segmentHref;
    this.meetingHref = meetingHref;
    this.reload = reload;
    this.onFailure = onFailure;
    this.announce = announce;
    this.emptyText = emptyText;
    this.items = new Map(); // id -> payload
    this.editing = null; // id of the item whose form is open
    this.errors = new Map(); // id -> message shown under the item
    this.busy = new Set();
    this.render();
  }

  clear() {
    this.items.clear();
    this.errors.clear();
    this.editing = null;
    this.render();
  }

  setAll(items) {
    const fresh = new Map((items || []).map((i) => [i.id, i]));
    if (this.editing != null && !(fresh.get(this.editing) && fresh.get(this.editing).status === "proposed")) this.editing = null;
    this.items = fresh;
    this.render();
  }

  /** Add or replace one item; returns true when it was not known before. */
  upsert(item) {
    if (!item || item.id == null) return false;
    const isNew = !this.items.has(item.id);
    const before = this.items.get(item.id);
    this.items.set(item.id, item);
    if (this.editing === item.id && item.status !== "proposed") {
      this.editing = null;
      const who = item.decided_by ? item.decided_by.name : "Someone";
      this.errors.set(item.id, `${who} already ${item.status === "approved" ? "approved" : "rejected"} this item.`);
    }
    if (this.editing === item.id) {
      // Keep the open form (what is being typed); the rest of the item follows on close.
      this._updateCount();
      return isNew;
    }
    if (!before || JSON.stringify(before) !== JSON.stringify(item)) this._replace(item);
    return isNew;
  }

  get ordered() {
    const rank = { proposed: 0, approved: 1, rejected: 2 };
    return [...this.items.values()].sort((a, b) => (rank[a.status] ?? 3) - (rank[b.status] ?? 3) ||
      String(a.created_at).localeCompare(String(b.created_at)) || a.id - b.id);
  }

  render() {
    const frag = document.createDocumentFragment();
    for (const item of this.ordered) frag.append(this._node(item));
    this.listEl.replaceChildren(frag);
    if (!this.items.size) this.listEl.append(el("li", "action-items-empty", this.emptyText));
    this._updateCount();
  }

  _updateCount() {
    if (!this.countEl) return;
    const open = [...this.items.values()].filter((i) => i.status === "proposed").length;
    this.countEl.textContent = open ? String(open) : "";
    this.countEl.title = open ? `${open} waiting for a decision` : "";
  }

  _replace(item, focus = false) {
    const old = this.listEl.querySelector(`li.action-item[data-item-id="${Number(item.id)}"]`);
    if (!old) {
      this.render(); // new items take their place in the order
    } else {
      const node = this._node(item);
      old.replaceWith(node);
      if (focus) node.focus();
    }
    this._updateCount();
  }

  _node(item) {
    const li = el("li", "action-item");
    li.dataset.itemId = String(item.id);
    li.dataset.status = item.status;
    li.tabIndex = -1;
    li.append(el("p", "ai-text", item.text));

    const meta = el("div", "ai-meta");
    if (item.owner) {
      meta.append(el("span", "ai-owner", `Owner: ${item.owner.name}`));
    } else {
      const owner = el("span", "ai-owner ai-unassigned", "Unassigned");
      meta.append(owner);
      if (item.suggested_owner) {
        const hint = el("span", "ai-suggested", `suggested: ${item.suggested_owner.name}`);
        if (item.owner_reason) hint.title = item.owner_reason;
        meta.append(hint);
      }
    }
    if (item.due_date) {
      meta.append(el("span", "ai-due", `Due ${shortDate(item.due_date)}${item.due_text ? ` (“${item.due_text}”)` : ""}`));
    } else if (item.due_text) {
      meta.append(el("span", "ai-due", `Due: “${item.due_text}”`));
    }
    if (typeof item.confidence === "number") {
      const conf = el("span", "ai-confidence", `${Math.round(item.confidence * 100)}% sure`);
      conf.dataset.level = item.confidence >= 0.75 ? "high" : item.confidence >= 0.5 ? "medium" : "low";
      meta.append(conf);
    }
    li.append(meta);
    if (!item.owner && item.suggested_owner && item.owner_reason) li.append(el("p", "ai-reason", item.owner_reason));

    const prov = item.provenance || {};
    const source = el("div", "ai-provenance");
    source.append(document.createTextNode(prov.speaker ? `Said by ${prov.speaker.name}` : "From the transcript"));
    const seqs = Array.isArray(prov.segment_seqs) ? prov.segment_seqs : [];
    if (seqs.length && this.segmentHref) {
      source.append(document.createTextNode(" · "));
      seqs.forEach((seq, i) => {
        if (i) source.append(document.createTextNode(" "));
        const a = link(this.segmentHref(item, seq), `#${seq}`, "ai-segment");
        a.setAttribute("aria-label", `Transcript line ${seq}`);
        source.append(a);
      });
    } else if (item.meeting != null && this.meetingHref) {
      source.append(document.createTextNode(" · "));
      source.append(link(this.meetingHref(item), "transcript", "ai-segment"));
    }
    if (prov.model_id) {
      const model = el("span", "ai-model", ` · ${prov.model_id}`);
      model.title = prov.prompt_version ? `prompt ${prov.prompt_version}` : "";
      source.append(model);
    }
    li.append(source);

    if (item.status === "proposed") {
      if (this.editing === item.id) li.append(this._form(item));
      else li.append(this._buttons(item));
    } else {
      const who = item.decided_by ? item.decided_by.name : "someone";
      const decided = el("p", "ai-decided", `${STATUS_WORD[item.status] || item.status} by ${who}`);
      if (item.decided_at) decided.title = clock(item.decided_at);
      li.append(decided);
    }
    const error = this.errors.get(item.id);
    const errEl = el("p", "ai-error", error || "");
    errEl.setAttribute("role", "alert");
    errEl.hidden = !error;
    li.append(errEl);
    return li;
  }

  _buttons(item) {
    const row = el("div", "ai-actions");
    const busy = this.busy.has(item.id);
    const make = (label, cls, onClick) => {
      const b = el("button", `btn btn-small ${cls}`, label);
      b.type = "button";
      b.disabled = busy;
      b.setAttribute("aria-label", `${label}: ${item.text}`);
      b.addEventListener("click", onClick);
      return b;
    };
    row.append(
      make("Approve", "btn-primary ai-approve", () => this.decide(item, { action: "approve" })),
      make("Edit", "btn-light ai-edit-open", () => this.openEdit(item.id)),
      make("Reject", "btn-light ai-reject", () => this.decide(item, { action: "reject" })),
    );
    return row;
  }

  _form(item) {
    const form = el("form", "ai-edit");
    form.noValidate = false;
    const uid = `ai-${item.id}`;
    const field = (labelText, input) => {
      const wrap = el("div", "ai-field");
      const label = el("label", null, labelText);
      label.htmlFor = input.id;
      wrap.append(label, input);
      return wrap;
    };
    const text = el("textarea", "ai-edit-text");
    text.id = `${uid}-text`;
    text.name = "text";
    text.rows = 2;
    text.maxLength = 500;
    text.required = true;
    text.value = item.text;
    const owner = el("select", "ai-edit-owner");
    owner.id = `${uid}-owner`;
    owner.name = "owner";
    const none = el("option", null, "Unassigned");
    none.value = "";
    owner.append(none);
    const members = [...(this.members() || [])].filter((m) => m && m.id != null)
      .sort((a, b) => String(a.name || a.username).localeCompare(String(b.name || b.username)));
    for (const m of members) {
      const opt = el("option", null, m.name || m.username);
      opt.value = String(m.id);
      owner.append(opt);
    }
    owner.value = item.owner ? String(item.owner.id) : "";
    if (item.owner && owner.value !== String(item.owner.id)) {
      const opt = el("option", null, item.owner.name);
      opt.value = String(item.owner.id);
      owner.append(opt);
      owner.value = opt.value;
    }
    const due = el("input", "ai-edit-due");
    due.type = "date";
    due.id = `${uid}-due`;
    due.name = "due_date";
    due.value = item.due_date || "";
    const save = el("button", "btn btn-primary btn-small ai-edit-save", "Save");
    save.type = "submit";
    const cancel = el("button", "btn btn-light btn-small ai-edit-cancel", "Cancel");
    cancel.type = "button";
    cancel.addEventListener("click", () => this.closeEdit(item.id));
    const row = el("div", "ai-actions");
    row.append(save, cancel);
    form.append(field("Action", text), field("Owner", owner), field("Due", due), row);
    form.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.preventDefault();
        this.closeEdit(item.id);
      }
    });
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const body = { action: "edit", text: text.value.trim(), owner: owner.value ? Number(owner.value) : null };
      if (due.value) body.due_date = due.value;
      if (!body.text) {
        this._error(item.id, "Write what needs doing.");
        return;
      }
      save.disabled = true;
      this.decide(this.items.get(item.id) || item, body, { fromForm: true }).finally(() => { save.disabled = false; });
    });
    return form;
  }

  openEdit(id) {
    this.editing = id;
    this.errors.delete(id);
    const item = this.items.get(id);
    if (!item) return;
    this._replace(item);
    const input = this.listEl.querySelector(`li.action-item[data-item-id="${Number(id)}"] .ai-edit-text`);
    if (input) input.focus();
  }

  closeEdit(id) {
    if (this.editing === id) this.editing = null;
    const item = this.items.get(id);
    if (!item) return;
    this._replace(item);
    const button = this.listEl.querySelector(`li.action-item[data-item-id="${Number(id)}"] .ai-edit-open`);
    if (button) button.focus();
  }

  _error(id, message) {
    this.errors.set(id, message);
    const errEl = this.listEl.querySelector(`li.action-item[data-item-id="${Number(id)}"] .ai-error`);
    if (errEl) {
      errEl.textContent = message;
      errEl.hidden = !message;
    }
  }

  /** POST a decision; the answer replaces the item. Returns true when it was taken. */
  async decide(item, body, { fromForm = false } = {}) {
    if (this.busy.has(item.id)) return false;
    this.busy.add(item.id);
    this.errors.delete(item.id);
    if (!fromForm) this._replace(item); // buttons disabled while it runs
    let r;
    try {
      r = await apiRequest(`/api/action-items/${Number(item.id)}/decision/`, { method: "POST", body });
    } finally {
      this.busy.delete(item.id);
    }
    if (r.ok && r.data) {
      if (this.editing === item.id) this.editing = null;
      this.items.set(r.data.id, r.data);
      this._replace(r.data, true);
      const word = body.action === "edit" ? "saved" : body.action === "approve" ? "approved" : "rejected";
      this.announce(`Action item ${word}: ${r.data.text}`);
      return true;
    }
    if (r.status === 409) {
      this.editing = null;
      this.errors.set(item.id, `${r.message}. Showing the latest version.`);
      await this.reload();
      this._replace(this.items.get(item.id) || item);
      return false;
    }
    if (r.status === 0 || r.status >= 500) this.onFailure();
    this.errors.set(item.id, r.message);
    if (fromForm) this._error(item.id, r.message);
    else this._replace(this.items.get(item.id) || item);
    return false;
  }
}

// --- answers and catch-up ---

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
function openResultBox(box, result) {
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

/** Render the reply of POST /api/assistant/ask/ (or a failed request) into `box`. */
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
  const when = clock(event.at);
  if (when) li.append(el("span", "catch-up-when", when));
  return li;
}

/** Render the reply of GET /api/rooms/<id>/catch-up/ into `box`. */
export function renderCatchUp(box, result) {
  const data = openResultBox(box, result);
  if (!data) return;
  const events = Array.isArray(data.events) ? data.events : [];
  box.dataset.state = data.unavailable ? "unavailable" : data.source || "model";
  const summary = el("p", "catch-up-summary", data.summary || "");
  box.append(summary);
  if (data.source === "fallback") {
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
    details.append(el("summary", null, `Everything since ${clock(data.since)} (${events.length})`));
    const ul = el("ul", "catch-up-events");
    for (const e of events) ul.append(eventNode(e));
    details.append(ul);
    box.append(details);
  }
}

// --- the sidebar panel ---

function loadOpen() {
  try {
    return localStorage.getItem(OPEN_KEY) !== "false";
  } catch (err) {
    return true;
  }
}

function saveOpen(open) {
  try {
    localStorage.setItem(OPEN_KEY, open ? "true" : "false");
  } catch (err) {
    /* private mode: the panel just opens again next time */
  }
}

export class AssistantPanel {
  constructor({ socket, state, notice }) {
    this.socket = socket;
    this.state = state;
    this.notice = notice || (() => {});
    this.roomId = null;
    this.meetingId = null;
    this.meetingEnded = false;
    this.summary = null;
    this.loadGen = 0;
    this.loading = false;
    this.liveDuringLoad = []; // frames that arrive while the notes load are applied again after it
    this.statusDown = null; // {down, all} from the last status check
    this.callDown = false; // the last model-backed reply said the model was unavailable
    this.statusTimer = null;
    this.lastStatusAt = 0;
    this.askGen = 0; // a newer question (or walking elsewhere) makes an older answer's events stale
    this.open = loadOpen();

    this.panel = document.getElementById("assistant-panel");
    this.toggleEl = document.getElementById("assistant-toggle");
    this.bodyEl = document.getElementById("assistant-body");
    this.roomEl = document.getElementById("assistant-room");
    this.unavailableEl = document.getElementById("assistant-unavailable");
    this.notesEl = document.getElementById("assistant-notes");
    this.itemsHeadEl = document.getElementById("assistant-items-head");
    this.askForm = document.getElementById("assistant-ask-form");
    this.askInput = document.getElementById("assistant-question");
    this.askButton = document.getElementById("assistant-ask");
    this.answerEl = document.getElementById("assistant-answer");
    this.catchUpButton = document.getElementById("assistant-catch-up");
    this.catchUpEl = document.getElementById("assistant-catch-up-result");
    this.announceEl = document.getElementById("assistant-announce");
    this.items = new ActionItemList({
      listEl: document.getElementById("assistant-items"),
      countEl: document.getElementById("assistant-items-count"),
      members: () => [...this.state.members.values()],
      segmentHref: (item, seq) => `/meetings/${Number(item.meeting)}/#seg-${Number(seq)}`,
      meetingHref: (item) => `/meetings/${Number(item.meeting)}/`,
      reload: () => this.loadNotes(),
      onFailure: () => this.checkStatus(true),
      announce: (text) => this.say(text),
    });
    this._bind();
    this.render();
    this._schedulePoll();
  }

  _bind() {
    const s = this.socket;
    s.on("meeting.state", (f) => this.onMeetingState(f.meeting));
    s.on("meeting.left", (f) => {
      if (f.meeting === this.meetingId) this.setMeeting(null);
    });
    s.on("assistant.summary", (f) => this.onSummary(f.summary));
    s.on("assistant.action_item", (f) => this.onActionItem(f.item));
    this.toggleEl.addEventListener("click", () => this.setOpen(!this.open));
    this.askForm.addEventListener("submit", (e) => {
      e.preventDefault();
      this.ask(this.askInput.value);
    });
    this.catchUpButton.addEventListener("click", () => this.catchUp());
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && this.open) this.checkStatus();
    });
  }

  // --- where I am ---

  /** Called by main.js after each hello: notes are reloaded (frames may have been missed meanwhile). */
  onHello() {
    this.onRoomChanged(this.state.you.room, true);
  }

  /** Called by main.js when my room changes. */
  onRoomChanged(room, reconnect = false) {
    const changed = room !== this.roomId;
    this.roomId = room == null ? null : room;
    if (changed) {
      this.askGen += 1;
      this.askButton.disabled = false;
      this.answerEl.hidden = true;
      this.answerEl.replaceChildren();
      this.catchUpEl.hidden = true;
      this.catchUpEl.replaceChildren();
      this.setMeeting(null); // the room's meeting.state follows if there is one
    } else if (reconnect && this.meetingId != null) {
      this.loadNotes();
    }
    this.render();
  }

  onMeetingState(meeting) {
    if (!meeting || meeting.room !== this.state.you.room) return;
    if (this.roomId !== meeting.room) this.onRoomChanged(meeting.room);
    this.meetingEnded = !!meeting.ended_at;
    if (meeting.id !== this.meetingId) this.setMeeting(meeting.id);
    else this.render();
  }

  setMeeting(id) {
    if (id === this.meetingId) return;
    this.meetingId = id;
    this.loading = false;
    this.summary = null;
    this.items.clear();
    this.loadGen += 1;
    this.render();
    if (id != null) this.loadNotes();
  }

  // --- notes ---

  async loadNotes() {
    const id = this.meetingId;
    if (id == null) return;
    const gen = ++this.loadGen;
    this.loading = true;
    this.liveDuringLoad = [];
    const r = await apiRequest(`/api/meetings/${Number(id)}/notes/`);
    if (gen !== this.loadGen || id !== this.meetingId) return;
    this.loading = false;
    if (!r.ok) {
      if (!this.summary) renderNotes(this.notesEl, null, "The notes could not be loaded; they appear as the assistant writes them.");
      if (r.status === 0 || r.status >= 500) this.checkStatus(true);
      return;
    }
    const data = r.data || {};
    this.summary = pickSummary(pickSummary(null, data.rolling), data.final);
    this.items.setAll(Array.isArray(data.action_items) ? data.action_items : []);
    const replay = this.liveDuringLoad;
    this.liveDuringLoad = [];
    for (const [kind, payload] of replay) {
      if (kind === "summary") this.summary = pickSummary(this.summary, payload);
      else this.items.upsert(payload);
    }
    this.renderNotes();
  }

  onSummary(summary) {
    if (!summary || summary.meeting !== this.meetingId) return;
    if (this.loading) this.liveDuringLoad.push(["summary", summary]);
    this.summary = pickSummary(this.summary, summary);
    if (summary.source === "model") this.callDown = false;
    this.renderNotes();
    this.renderAvailability();
  }

  onActionItem(item) {
    if (!item || item.meeting == null || item.meeting !== this.meetingId) return;
    if (this.loading) this.liveDuringLoad.push(["item", item]);
    const isNew = this.items.upsert(item);
    if (isNew && item.status === "proposed") this.say(`New action item proposed: ${item.text}`);
  }

  say(text) {
    if (!this.announceEl) return;
    // A changed text node is announced by the polite live region.
    this.announceEl.textContent = "";
    setTimeout(() => { this.announceEl.textContent = text; }, 50);
  }

  // --- ask and catch up ---

  async ask(question) {
    const q = String(question || "").trim();
    if (!q) {
      this.askInput.focus();
      return;
    }
    const gen = ++this.askGen;
    this.askButton.disabled = true;
    this.answerEl.hidden = false;
    this.answerEl.dataset.state = "asking";
    this.answerEl.replaceChildren(el("p", "answer-pending", "Looking through what this room knows…"));
    const body = { question: q };
    if (this.roomId != null) body.room = this.roomId;
    let text = "";
    let r = await askStream(body, {
      onEvent: (event) => {
        if (gen !== this.askGen) return;
        if (event.type === "sources" && !text && event.count > 0) {
          const passages = event.count === 1 ? "1 passage" : `${Number(event.count)} passages`;
          this.answerEl.replaceChildren(el("p", "answer-pending", `Writing an answer from ${passages}…`));
        } else if (event.type === "delta") {
          text += String(event.text || "");
          renderPartialAnswer(this.answerEl, text);
        }
      },
    });
    if (r === null && gen === this.askGen) r = await apiRequest("/api/assistant/ask/", { method: "POST", body });
    if (gen !== this.askGen) return;
    this.askButton.disabled = false;
    renderAnswer(this.answerEl, r);
    this._afterCall(r);
  }

  async catchUp() {
    if (this.roomId == null) return;
    this.catchUpButton.disabled = true;
    this.catchUpEl.hidden = false;
    this.catchUpEl.dataset.state = "loading";
    this.catchUpEl.replaceChildren(el("p", "answer-pending", "Gathering what happened here…"));
    const r = await apiRequest(`/api/rooms/${Number(this.roomId)}/catch-up/`);
    this.catchUpButton.disabled = this.roomId == null;
    renderCatchUp(this.catchUpEl, r);
    this._afterCall(r);
  }

  _afterCall(r) {
    if (r.ok && r.data) {
      if (r.data.unavailable) {
        this.callDown = true;
        this.checkStatus(true);
      } else if (r.data.model_call || r.data.source === "model") {
        this.callDown = false; // a model answered
      }
    } else if (r.status === 0 || r.status >= 500) {
      this.checkStatus(true);
    }
    this.renderAvailability();
  }

  // --- availability ---

  async checkStatus(afterFailure = false) {
    if (afterFailure && Date.now() - this.lastStatusAt < STATUS_RETRY_MIN_MS) return;
    this.lastStatusAt = Date.now();
    const status = await assistantStatus();
    if (status) {
      // The breakers open only after a few failures, so "all available" right after a failed call proves
      // little; a recovery (down, then up) does clear it, as does any reply that came from a model.
      const recovered = this.statusDown && this.statusDown.down.length && !status.down.length;
      this.statusDown = status;
      if (recovered) this.callDown = false;
    }
    this.renderAvailability();
  }

  _schedulePoll() {
    clearInterval(this.statusTimer);
    this.statusTimer = setInterval(() => {
      if (this.open && !document.hidden && !this.panel.hidden) this.checkStatus();
    }, STATUS_POLL_MS);
    if (this.open) this.checkStatus();
  }

  get unavailable() {
    return this.callDown || !!(this.statusDown && this.statusDown.all);
  }

  // --- rendering ---

  setOpen(open) {
    this.open = !!open;
    saveOpen(this.open);
    this.render();
    if (this.open) this.checkStatus();
  }

  render() {
    this.panel.dataset.open = this.open ? "true" : "false";
    document.body.classList.toggle("assistant-open", this.open);
    this.toggleEl.setAttribute("aria-expanded", this.open ? "true" : "false");
    this.bodyEl.hidden = !this.open;
    const room = this.roomId != null && this.state.geo ? this.state.geo.roomById.get(this.roomId) : null;
    this.roomEl.textContent = room ? room.name : this.roomId == null ? "Hallway" : "";
    this.panel.dataset.room = this.roomId == null ? "" : String(this.roomId);
    this.panel.dataset.meeting = this.meetingId == null ? "" : String(this.meetingId);
    this.askInput.placeholder = room ? `Ask about ${room.name}…` : "Ask about your rooms…";
    this.catchUpButton.disabled = this.roomId == null;
    this.catchUpButton.title = this.roomId == null ? "Walk into a room first" : "What happened here since you were last in";
    this.itemsHeadEl.hidden = this.meetingId == null;
    this.items.listEl.hidden = this.meetingId == null;
    this.renderNotes();
    this.renderAvailability();
  }

  renderNotes() {
    if (this.meetingId == null) {
      renderNotes(this.notesEl, null, this.roomId == null
        ? "Walk into a room to see its meeting notes."
        : "No meeting here right now. Ask about this room, or catch up below.");
      this.notesEl.dataset.source = "none";
      return;
    }
    renderNotes(this.notesEl, this.summary, this.loading ? "Loading the notes…" : undefined);
  }

  renderAvailability() {
    const down = this.unavailable;
    this.unavailableEl.hidden = !down;
    this.panel.dataset.available = down ? "false" : "true";
    if (!down && this.statusDown && this.statusDown.down.length) {
      this.unavailableEl.hidden = false;
      this.unavailableEl.dataset.partial = "true";
      this.unavailableEl.textContent = `The ${this.statusDown.down.join(" and ")} model is unavailable: answers may be simpler for now.`;
    } else {
      this.unavailableEl.dataset.partial = "false";
      this.unavailableEl.textContent = UNAVAILABLE_TEXT;
    }
  }
}
