// Wires the office page together: socket → state → map, sidebar and chat.

import { OfficeSocket } from "./socket.js";
import { MapView } from "./map.js";
import { ChatPanel } from "./chat.js";
import { Sidebar } from "./sidebar.js";
import { AudioHub, ProximityVoice } from "./voice.js";
import { MeetingPanel } from "./meeting.js";
import { VideoCall } from "./video.js";
import { AssistantPanel } from "./assistant.js";
import { RoomDocuments } from "./documents.js";
import { Megaphone } from "./megaphone.js";
import { el } from "./lib/dom.js";

const app = document.getElementById("office-app");
const mapId = Number(app.dataset.mapId);

const state = {
  mapId,
  ready: false, // a hello arrived on the current connection
  me: null, // {id, username, name, color, status, role}
  you: { x: 0, y: 0, room: null }, // my (predicted) tile and room
  layout: null,
  geo: null,
  threads: new Map(), // id -> {id, kind, title, room, last_seq, unread, with_user}
  presence: new Map(), // user -> {user, name, color, status, room}
  members: new Map(), // id -> {id, username, name, role}
  positions: new Map(), // user -> {x, y, seq}: last known tile
  memberRooms: new Set(), // private rooms I may enter (room threads I can read)
  selectedThread: null,
  moveSeq: 0,
  tickMs: 100,
  limits: {},
  membersVersion: 0,
  speaking: new Set(), // user ids whose voice is heard right now (a ring on the map)
};

// --- notices ---

const noticeEl = document.getElementById("notice");
let noticeTimer = null;
function notice(text, kind = "info", ms = 5000) {
  if (!noticeEl || !text) return;
  clearTimeout(noticeTimer);
  noticeEl.textContent = String(text);
  noticeEl.className = "notice" + (kind === "error" ? " notice-error" : kind === "warn" ? " notice-warn" : "");
  noticeEl.hidden = false;
  noticeEl.dataset.kind = kind;
  // Restart the entrance animation.
  noticeEl.style.animation = "none";
  void noticeEl.offsetWidth;
  noticeEl.style.animation = "";
  if (ms > 0) noticeTimer = setTimeout(() => { noticeEl.hidden = true; }, ms);
}

// --- modules ---

const socket = new OfficeSocket(mapId);
const roomLabel = document.getElementById("room-label");

function renderRoomLabel() {
  const room = state.geo && state.you.room != null ? state.geo.roomById.get(state.you.room) : null;
  roomLabel.replaceChildren();
  if (!state.me) return;
  roomLabel.append(el("span", null, room ? room.name : "Hallway"));
  if (room) {
    roomLabel.append(el("span", "hud-kind", room.kind === "open" ? "open area" : room.kind === "meeting" ? "meeting room" : "private room"));
  }
}

function refreshMemberRooms() {
  state.memberRooms = new Set(
    [...state.threads.values()].filter((t) => t.kind === "room" && t.room != null).map((t) => t.room),
  );
}

let chat = null;
let sidebar = null;
let meeting = null;
let voice = null;
let assistant = null;
let documents = null;

const map = new MapView({
  canvas: document.getElementById("office-canvas"),
  state,
  socket,
  notice,
  onMoved: ({ room }) => {
    if (room !== state.you.room) {
      state.you.room = room;
      renderRoomLabel();
      if (chat) chat.onRoomChanged(room);
      if (sidebar) sidebar.scheduleWho(true);
      if (meeting) meeting.onRoomChanged(room);
      if (assistant) assistant.onRoomChanged(room);
      if (documents) documents.onRoomChanged(room);
    } else if (sidebar) {
      sidebar.scheduleWho();
    }
    if (voice) voice.schedule();
  },
});

chat = new ChatPanel({ socket, state, notice });
sidebar = new Sidebar({ socket, state, notice });
const audio = new AudioHub({ notice });
meeting = new MeetingPanel({ socket, state, audio, notice });
const video = new VideoCall({ state, audio, notice });
voice = new ProximityVoice({ socket, state, audio, notice, video });
assistant = new AssistantPanel({ socket, state, notice });
documents = new RoomDocuments({ socket, state, notice });
const megaphone = new Megaphone({ socket, state, notice, pane: document.querySelector(".map-pane") });

// --- protocol ---

socket.on("hello", (f) => {
  state.me = { ...f.me };
  state.tickMs = f.tick_ms || state.tickMs;
  state.limits = f.limits || {};
  state.layout = f.map;
  map.setLayout(f.map);
  state.members = new Map((f.members || []).map((m) => [m.id, m]));
  state.membersVersion += 1;
  state.presence = new Map((f.presence || []).map((p) => [p.user, { ...p }]));
  state.positions.clear();
  state.you.x = f.you.x;
  state.you.y = f.you.y;
  const room = state.geo.roomAt(f.you.x, f.you.y);
  state.you.room = room ? room.id : f.you.room ?? null;
  state.positions.set(state.me.id, { x: f.you.x, y: f.you.y, seq: 0 });
  state.ready = true;
  map.reset();
  renderRoomLabel();
  document.getElementById("map-name").textContent = f.map.name || app.dataset.mapName || "";
  // Threads first: the chat needs them, and membership of private rooms comes from them.
  chat.onHello(f);
  refreshMemberRooms();
  sidebar.renderAll();
  assistant.onHello();
  documents.onRoomChanged(state.you.room); // after a reconnect too: progress frames may have been missed
});

socket.on("moves", (f) => {
  if (!state.ready || !Array.isArray(f.m)) return;
  map.applyMoves(f.m);
  sidebar.scheduleWho();
  voice.schedule();
});

socket.on("move.rejected", (f) => {
  if (!state.ready) return;
  map.onRejected(f);
});

function upsertPerson(person) {
  if (!person) return;
  const prev = state.presence.get(person.user) || {};
  state.presence.set(person.user, { ...prev, ...person });
  if (state.me && person.user === state.me.id) {
    state.me.status = person.status || state.me.status;
    sidebar.renderMe();
  }
  sidebar.scheduleWho();
  voice.schedule();
}

socket.on("presence.join", (f) => upsertPerson(f.person));
socket.on("presence.update", (f) => upsertPerson(f.person));
socket.on("presence.leave", (f) => {
  state.presence.delete(f.user);
  if (!state.me || f.user !== state.me.id) map.forget(f.user);
  sidebar.scheduleWho(true);
});

socket.on("thread.added", () => refreshMemberRooms());
socket.on("thread.removed", () => refreshMemberRooms());

socket.on("map.changed", (f) => {
  state.layout = f.map;
  map.setLayout(f.map);
  const room = state.geo.roomAt(state.you.x, state.you.y);
  const roomId = room ? room.id : null;
  if (roomId !== state.you.room) {
    state.you.room = roomId;
    chat.onRoomChanged(roomId);
    meeting.onRoomChanged(roomId);
    assistant.onRoomChanged(roomId);
    documents.onRoomChanged(roomId);
  }
  renderRoomLabel();
  sidebar.scheduleWho(true);
  notice("The office layout was updated", "info", 3000);
});

socket.on("error", (f) => {
  if (f.fatal && ["replaced", "session_expired", "not_signed_in"].includes(f.code)) return; // the close handler explains
  if (f.code === "not_nearby" && f.ref === "voice.signal") return; // voice.js hangs up quietly
  notice(f.message || f.code || "Something went wrong", "error");
});

socket.on("notice", (f) => notice(f.text, f.kind, 0));

socket.on("close", (f) => {
  state.ready = false;
  map.stopWalking();
  chat.renderLog();
  if (f.code === 4409) notice("The office was opened in another tab or window. Use it there, or click “Use here”.", "warn", 0);
  else if (f.code === 4403) notice(f.reason || "This office is not available", "error", 0);
});

socket.on("state", ({ state: s }) => {
  app.dataset.connection = s;
  if (s === "connected" && noticeEl && noticeEl.dataset.kind === "warn" && noticeEl.textContent.includes("another tab")) {
    noticeEl.hidden = true;
  }
});

// On a phone the people and chat panels are a sheet over the map (static/office/map-look.css).
const panelsToggle = document.getElementById("panels-toggle");
if (panelsToggle) {
  panelsToggle.addEventListener("click", () => {
    const open = app.dataset.panels !== "open";
    app.dataset.panels = open ? "open" : "closed";
    panelsToggle.setAttribute("aria-expanded", open ? "true" : "false");
    panelsToggle.textContent = open ? "Back to the map" : "People & chat";
  });
}

window.addEventListener("beforeunload", () => socket.close());

// For debugging and end-to-end tests.
window.officeClient = {
  socket,
  state,
  map,
  chat,
  sidebar,
  audio,
  meeting,
  voice,
  video,
  assistant,
  megaphone,
  notice,
  joinAudio: () => audio.start(),
  moveTo: (x, y) => map.walkTo(x, y),
  step: (dx, dy) => map.step(dx, dy),
  selectThread: (id) => chat.select(id, true),
  sendChat: (thread, body) => chat.send(thread, body),
};

socket.connect();
