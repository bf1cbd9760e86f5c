// The meeting page (/meetings/<id>/): participants, the whole transcript, search through `?q=`
// (server side) with the matches highlighted; new segments of a running meeting appear as they are stored.
// The notes (summary, decisions, open questions, action items with links to their transcript lines)
// come from the assistant's REST API and are decided here as in the office sidebar.

import { ActionItemList } from "./assistant/items.js";
import { pickSummary, renderNotes } from "./assistant/notes.js";
import { assistantStatus } from "./assistant/status.js";
import { el } from "./lib/dom.js";
import { formatDateTime, formatTime } from "./lib/format.js";
import { apiRequest, getJson } from "./lib/http.js";

const PAGE = 1000;
const POLL_MS = 4000;
const SEARCH_DEBOUNCE_MS = 250;

const root = document.getElementById("meeting-page");
const meetingId = Number(root.dataset.meetingId);
const listEl = document.getElementById("segments");
const searchEl = document.getElementById("transcript-search");
const countEl = document.getElementById("transcript-count");
const peopleEl = document.getElementById("meeting-participants");
const notesSummaryEl = document.getElementById("notes-summary");
const notesUnavailableEl = document.getElementById("notes-unavailable");
const notesAnnounceEl = document.getElementById("notes-announce");
const NOTES_EVERY_POLLS = 3; // the notes change about once a minute: every third transcript poll

let segments = []; // all segments, in seq order (without a search)
let query = "";
let searchGen = 0;
let ended = root.dataset.ended === "true";
let started = null;

function localTimes() {
  for (const t of document.querySelectorAll("time[datetime]")) {
    const text = formatDateTime(t.dateTime);
    if (text) t.textContent = text;
  }
}

function timeOf(seg) {
  return formatTime(seg.spoken_at, { seconds: true });
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The text with each case-insensitive occurrence of `q` wrapped in <mark>. */
function highlighted(text, q) {
  const frag = document.createDocumentFragment();
  if (!q) {
    frag.append(text);
    return frag;
  }
  const re = new RegExp(escapeRegExp(q), "gi");
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) frag.append(text.slice(last, m.index));
    frag.append(el("mark", null, m[0]));
    last = m.index + m[0].length;
  }
  if (last < text.length) frag.append(text.slice(last));
  return frag;
}

function segmentNode(seg, q) {
  const li = el("li", "segment");
  li.id = `seg-${seg.seq}`;
  li.dataset.seq = String(seg.seq);
  li.dataset.speaker = String(seg.speaker ? seg.speaker.id : "");
  const time = el("time", "segment-time", timeOf(seg));
  time.dateTime = seg.spoken_at || "";
  const speaker = el("span", "segment-speaker", seg.speaker ? seg.speaker.name : "Someone");
  const text = el("p", "segment-text");
  text.style.margin = "0";
  text.append(highlighted(seg.text || "", q));
  li.append(time, speaker, text);
  return li;
}

function render(list, q) {
  const frag = document.createDocumentFragment();
  for (const seg of list) frag.append(segmentNode(seg, q));
  listEl.replaceChildren(frag);
  if (!list.length) {
    listEl.append(el("li", "segments-empty", q ? `Nothing said matches “${q}”.` : "Nothing has been transcribed yet."));
  }
  countEl.textContent = q ? `${list.length} match${list.length === 1 ? "" : "es"}` : `${list.length} segment${list.length === 1 ? "" : "s"}`;
}

async function loadAfter(after, q = "") {
  const out = [];
  for (;;) {
    const params = new URLSearchParams({ after: String(after), limit: String(PAGE) });
    if (q) params.set("q", q);
    const data = await getJson(`/api/meetings/${meetingId}/transcript/?${params}`);
    const got = data.segments || [];
    out.push(...got);
    if (got.length < PAGE) return out;
    after = got[got.length - 1].seq;
  }
}

async function loadDetail() {
  try {
    const m = await getJson(`/api/meetings/${meetingId}/`);
    started = m.started_at;
    if (m.ended_at && !ended) {
      ended = true;
      const endedEl = document.getElementById("meeting-ended");
      const t = el("time", null, m.ended_at);
      t.id = "meeting-ended";
      t.dateTime = m.ended_at;
      endedEl.replaceWith(document.createTextNode("ended "), t);
      localTimes();
    }
    const frag = document.createDocumentFragment();
    for (const p of m.participants || []) {
      const li = el("li");
      li.dataset.userId = String(p.user);
      li.append(el("span", null, p.name));
      li.append(el("span", p.transcribed ? "mp-badge mp-on" : "mp-badge mp-off", p.transcribed ? "transcribed" : "opted out"));
      frag.append(li);
    }
    peopleEl.replaceChildren(frag);
    if (!(m.participants || []).length) peopleEl.append(el("li", null, "Nobody"));
  } catch (err) {
    peopleEl.replaceChildren(el("li", null, "Could not load the participants"));
  }
}

// --- notes ---

let members = [];
let notesSummary = null;
let pollCount = 0;

const items = new ActionItemList({
  listEl: document.getElementById("notes-items"),
  countEl: document.getElementById("notes-items-count"),
  members: () => members,
  segmentHref: (item, seq) => `#seg-${Number(seq)}`,
  meetingHref: () => "#segments",
  reload: () => loadNotes(),
  onFailure: () => checkAvailability(),
  announce: (text) => { notesAnnounceEl.textContent = text; },
});

async function loadMembers() {
  const r = await apiRequest("/api/members/");
  if (r.ok && Array.isArray(r.data)) members = r.data;
}

async function checkAvailability() {
  const status = await assistantStatus();
  if (status) notesUnavailableEl.hidden = !status.all;
}

async function loadNotes() {
  const r = await apiRequest(`/api/meetings/${meetingId}/notes/`);
  if (!r.ok) {
    if (!notesSummary) renderNotes(notesSummaryEl, null, "The notes could not be loaded.");
    if (r.status === 0 || r.status >= 500) checkAvailability();
    return;
  }
  const data = r.data || {};
  notesSummary = pickSummary(pickSummary(null, data.rolling), data.final);
  renderNotes(notesSummaryEl, notesSummary, ended
    ? "No notes were written for this meeting."
    : "No notes yet: they appear a minute or so after people start talking.");
  items.setAll(Array.isArray(data.action_items) ? data.action_items : []);
}

/** Bring the segment named by the address (#seg-<seq>) into view, leaving a search that hides it. */
async function showTarget() {
  const match = /^#seg-(\d+)$/.exec(location.hash);
  if (!match) return;
  let node = document.getElementById(`seg-${match[1]}`);
  if (!node && query) {
    searchEl.value = "";
    await search("");
    node = document.getElementById(`seg-${match[1]}`);
  }
  if (!node) return;
  for (const other of listEl.querySelectorAll(".segment.is-target")) other.classList.remove("is-target");
  node.classList.add("is-target");
  node.scrollIntoView({ block: "center" });
}

window.addEventListener("hashchange", () => { showTarget(); });

async function search(q) {
  const gen = ++searchGen;
  query = q;
  const url = new URL(location.href);
  if (q) url.searchParams.set("q", q);
  else url.searchParams.delete("q");
  history.replaceState(null, "", url);
  if (!q) {
    render(segments, "");
    return;
  }
  countEl.textContent = "Searching…";
  try {
    const found = await loadAfter(0, q);
    if (gen === searchGen) render(found, q);
  } catch (err) {
    if (gen === searchGen) countEl.textContent = "Search failed";
  }
}

async function poll() {
  if (ended) return;
  try {
    const after = segments.length ? segments[segments.length - 1].seq : 0;
    const fresh = await loadAfter(after);
    if (fresh.length) {
      segments.push(...fresh);
      if (!query) render(segments, "");
    }
    await loadDetail();
    pollCount += 1;
    if (pollCount % NOTES_EVERY_POLLS === 0 || ended) await loadNotes();
  } catch (err) {
    /* try again later */
  }
  if (!ended) setTimeout(poll, POLL_MS);
}

let debounce = null;
searchEl.addEventListener("input", () => {
  clearTimeout(debounce);
  debounce = setTimeout(() => search(searchEl.value.trim()), SEARCH_DEBOUNCE_MS);
});
document.getElementById("transcript-search-form").addEventListener("submit", (e) => {
  e.preventDefault();
  clearTimeout(debounce);
  search(searchEl.value.trim());
});

async function init() {
  localTimes();
  const initial = new URLSearchParams(location.search).get("q") || "";
  searchEl.value = initial;
  await loadDetail();
  loadMembers().then(loadNotes).catch(() => {});
  checkAvailability().catch(() => {});
  try {
    segments = await loadAfter(0);
  } catch (err) {
    countEl.textContent = "Could not load the transcript";
    return;
  }
  if (initial) await search(initial);
  else render(segments, "");
  await showTarget();
  if (!ended) setTimeout(poll, POLL_MS);
}

window.meetingPage = { search, items, loadNotes, get segments() { return segments; }, get started() { return started; } };
init();
