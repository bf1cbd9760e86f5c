// The map editor (admins): select, move and resize rooms, draw new ones, toggle doors on a room's
// walls, place and move desks, edit a room's or desk's fields. Every change is a REST write through
// the same services and validation as the admin and the API; a refusal shows the server's reason and
// the canvas goes back to the last saved layout. Undo is a stack of REST writes that restore the
// previous values. The layout comes from the editor socket (hello, then `map.changed` after anyone's
// change), so two admins editing see each other.

import { apiRequest, loginUrl, ReconnectingSocket } from "./lib/http.js";
import { el } from "./lib/dom.js";
import { compileLayout } from "./map/geometry.js";
import { EditorRenderer, HANDLE_PX } from "./editor/render.js";

const UNDO_LIMIT = 50;
const ROOM_FIELDS = ["name", "kind", "capacity", "assistant_enabled", "x", "y", "width", "height", "doors"];

const root = document.getElementById("map-editor");
const mapId = Number(root.dataset.mapId);
const canvas = document.getElementById("editor-canvas");
const $ = (id) => document.getElementById(id);

const state = {
  layout: null, // the last saved layout, as the server sent it
  preview: null, // a layout being dragged (not saved yet)
  geo: null,
  version: 0, // layouts applied so far (tests wait on it)
  tool: "select",
  selection: null, // {kind: "room" | "desk", ref}
  drag: null,
  hover: null,
  busy: false,
  members: new Map(), // id -> {id, username, name, role}; the desks' owner names come from it
  membersVersion: 0,
  roomMembers: null, // the selected room's member ids, as saved
  formKey: "", // the selected row as the side form last showed it
  quietUntil: 0, // until then a map.changed is taken for the echo of our own write
  undo: [], // [{label, backward: async () => result}]
};

// Rooms and desks are named through refs: undoing a deletion recreates the row with a new id, and
// every undo step that named the old one follows it.
const refs = { room: new Map(), desk: new Map() };
function refFor(kind, id) {
  let ref = refs[kind].get(id);
  if (!ref) {
    ref = { kind, id };
    refs[kind].set(id, ref);
  }
  return ref;
}
function rebind(ref, newId) {
  refs[ref.kind].delete(ref.id);
  ref.id = newId;
  refs[ref.kind].set(newId, ref);
}

const renderer = new EditorRenderer(canvas);

// --- layout ---

function applyLayout(layout) {
  state.layout = layout;
  state.version += 1;
  canvas.dataset.version = String(state.version);
  $("editor-map-name").textContent = layout.name;
  if (state.drag) return; // the drag ends on the new layout (its preview is rebuilt from it)
  showLayout(layout);
  refreshSelection();
}

function showLayout(layout) {
  state.geo = compileLayout(layout);
  if (renderer.mapW !== layout.width || renderer.mapH !== layout.height) renderer.fitTo(layout.width, layout.height);
  renderer.invalidate();
}

async function reload() {
  const r = await apiRequest(`/api/maps/${mapId}/`);
  if (r.ok) applyLayout(r.data);
  else showError(r.message);
}

const roomById = (id) => (state.layout ? state.layout.rooms.find((r) => r.id === id) : null);
const deskById = (id) => (state.layout ? state.layout.desks.find((d) => d.id === id) : null);
const deskAt = (layout, x, y) => layout.desks.find((d) => d.x === x && d.y === y) || null;

// --- messages ---

function showError(message) {
  const box = $("editor-error");
  box.textContent = message;
  box.hidden = !message;
}

function status(text) {
  $("editor-status").textContent = text;
}

function hint(text) {
  $("editor-hint").textContent = text || "";
}

// --- writes and undo ---

/**
 * One change: `forward()` is the REST write; `backward(result)` builds the write that restores the
 * previous values (it runs on undo). A refusal shows the server's reason and reloads the saved map.
 */
async function change(label, forward, backward) {
  if (state.busy) return null;
  state.busy = true;
  canvas.dataset.busy = "true";
  showError("");
  status(`${label}…`);
  try {
    const r = await forward();
    if (!r.ok) {
      showError(r.message);
      status("");
      await reload();
      return null;
    }
    state.undo.push({ label, backward: () => backward(r) });
    if (state.undo.length > UNDO_LIMIT) state.undo.shift();
    renderHistory();
    status(`${label}: saved`);
    await reload();
    return r;
  } finally {
    state.busy = false;
    state.quietUntil = performance.now() + 2000;
    canvas.dataset.busy = "false";
  }
}

async function undo() {
  if (state.busy || !state.undo.length) return;
  const step = state.undo[state.undo.length - 1];
  state.busy = true;
  canvas.dataset.busy = "true";
  showError("");
  status(`Undoing ${step.label}…`);
  try {
    const r = await step.backward();
    if (r && !r.ok) {
      showError(`Could not undo ${step.label}: ${r.message}`);
      status("");
    } else {
      state.undo.pop();
      status(`Undone: ${step.label}`);
    }
    renderHistory();
    await reload();
  } finally {
    state.busy = false;
    state.quietUntil = performance.now() + 2000;
    canvas.dataset.busy = "false";
  }
}

function renderHistory() {
  const list = $("editor-history");
  list.replaceChildren(...[...state.undo].reverse().slice(0, 20).map((s) => el("li", null, s.label)));
  $("editor-undo").disabled = !state.undo.length;
}

const patchRoom = (ref, fields) => apiRequest(`/api/rooms/${ref.id}/`, { method: "PATCH", body: fields });
const putMembers = (ref, users) => apiRequest(`/api/rooms/${ref.id}/members/`, { method: "PUT", body: { users } });
const patchDesk = (ref, fields) => apiRequest(`/api/desks/${ref.id}/`, { method: "PATCH", body: fields });

function pick(obj, keys) {
  return Object.fromEntries(keys.map((k) => [k, obj[k]]));
}

/** Change fields of a room; undo puts the previous values back. */
function roomUpdate(room, fields, label) {
  const ref = refFor("room", room.id);
  const before = pick(room, Object.keys(fields));
  return change(label, () => patchRoom(ref, fields), () => patchRoom(ref, before));
}

/** POST a new row; undo deletes it, by a ref taken now (an undone deletion may give it a new id). */
function create(kind, label, url, fields) {
  let ref = null;
  return change(label,
    async () => {
      const r = await apiRequest(url, { method: "POST", body: { office_map: mapId, ...fields } });
      if (r.ok) ref = refFor(kind, r.data.id);
      return r;
    },
    () => apiRequest(`${url}${ref.id}/`, { method: "DELETE" }));
}

function roomCreate(fields) {
  return create("room", `Add ${fields.name}`, "/api/rooms/", fields);
}

async function roomDelete(room) {
  const members = await apiRequest(`/api/rooms/${room.id}/members/`);
  const users = members.ok ? members.data.users : [];
  const ref = refFor("room", room.id);
  const fields = { ...pick(room, ROOM_FIELDS), slug: room.slug };
  return change(`Delete ${room.name}`,
    () => apiRequest(`/api/rooms/${ref.id}/`, { method: "DELETE" }),
    async () => {
      const r = await apiRequest("/api/rooms/", { method: "POST", body: { office_map: mapId, ...fields } });
      if (!r.ok) return r;
      rebind(ref, r.data.id);
      return users.length ? putMembers(ref, users) : r;
    });
}

function membersUpdate(room, before, after) {
  const ref = refFor("room", room.id);
  return change(`Members of ${room.name}`, () => putMembers(ref, after), () => putMembers(ref, before));
}

function deskCreate(fields) {
  return create("desk", `Add ${fields.label}`, "/api/desks/", fields);
}

function deskUpdate(desk, fields, label) {
  const ref = refFor("desk", desk.id);
  const before = pick(desk, Object.keys(fields));
  return change(label, () => patchDesk(ref, fields), () => patchDesk(ref, before));
}

function deskDelete(desk) {
  const ref = refFor("desk", desk.id);
  const fields = pick(desk, ["label", "x", "y", "owner"]);
  return change(`Remove ${desk.label}`,
    () => apiRequest(`/api/desks/${ref.id}/`, { method: "DELETE" }),
    async () => {
      const r = await apiRequest("/api/desks/", { method: "POST", body: { office_map: mapId, ...fields } });
      if (r.ok) rebind(ref, r.data.id);
      return r;
    });
}

// --- geometry of edits ---

const onEdge = (r, x, y) =>
  x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height &&
  (x === r.x || x === r.x + r.width - 1 || y === r.y || y === r.y + r.height - 1);
const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));

/** Doors of `old` carried to the same side of the resized rectangle `rect` (one per tile). */
function carryDoors(old, rect) {
  const seen = new Set();
  const doors = [];
  for (const [dx, dy] of old.doors) {
    let nx;
    let ny;
    if (dy === old.y) [nx, ny] = [clamp(dx, rect.x, rect.x + rect.width - 1), rect.y];
    else if (dy === old.y + old.height - 1) [nx, ny] = [clamp(dx, rect.x, rect.x + rect.width - 1), rect.y + rect.height - 1];
    else if (dx === old.x) [nx, ny] = [rect.x, clamp(dy, rect.y, rect.y + rect.height - 1)];
    else [nx, ny] = [rect.x + rect.width - 1, clamp(dy, rect.y, rect.y + rect.height - 1)];
    const key = `${nx},${ny}`;
    if (!seen.has(key)) {
      seen.add(key);
      doors.push([nx, ny]);
    }
  }
  return doors;
}

function movedRoom(room, dx, dy) {
  const x = clamp(room.x + dx, 0, state.layout.width - room.width);
  const y = clamp(room.y + dy, 0, state.layout.height - room.height);
  const [sx, sy] = [x - room.x, y - room.y];
  return { ...room, x, y, doors: room.doors.map(([a, b]) => [a + sx, b + sy]) };
}

function resizedRoom(room, corner, tile) {
  const right = room.x + room.width - 1;
  const bottom = room.y + room.height - 1;
  const ax = corner.includes("w") ? right : room.x; // the corner that stays
  const ay = corner.includes("n") ? bottom : room.y;
  const px = clamp(tile[0], 0, state.layout.width - 1);
  const py = clamp(tile[1], 0, state.layout.height - 1);
  const rect = { x: Math.min(ax, px), y: Math.min(ay, py), width: Math.abs(ax - px) + 1, height: Math.abs(ay - py) + 1 };
  return { ...room, ...rect, doors: carryDoors(room, rect) };
}

function withRoom(layout, room) {
  return { ...layout, rooms: layout.rooms.map((r) => (r.id === room.id ? room : r)) };
}

function withDesk(layout, desk) {
  return { ...layout, desks: layout.desks.map((d) => (d.id === desk.id ? desk : d)) };
}

function setPreview(layout) {
  state.preview = layout;
  showLayout(layout || state.layout);
}

// --- pointer ---

function tileOf(e) {
  if (!state.geo) return null;
  return renderer.tileAt(state.geo, e.clientX, e.clientY);
}

function handleAt(e) {
  const room = state.selection && state.selection.kind === "room" ? roomById(state.selection.ref.id) : null;
  if (!room) return null;
  const rect = canvas.getBoundingClientRect();
  const px = e.clientX - rect.left;
  const py = e.clientY - rect.top;
  for (const [hx, hy, corner] of renderer.handlePoints(room)) {
    if (Math.abs(px - hx) <= HANDLE_PX + 2 && Math.abs(py - hy) <= HANDLE_PX + 2) return { room, corner };
  }
  return null;
}

canvas.addEventListener("pointerdown", (e) => {
  if (e.button !== 0 || !state.layout || state.busy) return;
  canvas.focus({ preventScroll: true });
  const tile = tileOf(e);
  const handle = state.tool === "select" ? handleAt(e) : null;
  if (!tile && !handle) return;
  canvas.setPointerCapture(e.pointerId);
  if (state.tool === "room") {
    state.drag = { type: "draw", start: tile, at: tile };
    return;
  }
  if (state.tool === "desk") {
    state.drag = { type: "place", start: tile, at: tile };
    return;
  }
  if (handle) {
    state.drag = { type: "resize", room: handle.room, corner: handle.corner, start: tile, at: tile };
    return;
  }
  const desk = deskAt(state.layout, tile[0], tile[1]);
  if (desk) {
    select("desk", desk.id);
    state.drag = { type: "desk", desk, start: tile, at: tile };
    return;
  }
  const selected = state.selection && state.selection.kind === "room" ? roomById(state.selection.ref.id) : null;
  // The selected room keeps the pointer on its own walls (a click there toggles a door).
  const room = selected && onEdge(selected, tile[0], tile[1]) ? selected : state.geo.roomAt(tile[0], tile[1]);
  if (!room) {
    select(null);
    return;
  }
  const wasSelected = selected && selected.id === room.id;
  select("room", room.id);
  state.drag = { type: "move", room, start: tile, at: tile, wasSelected };
});

canvas.addEventListener("pointermove", (e) => {
  const tile = tileOf(e);
  state.hover = tile;
  const drag = state.drag;
  if (!drag || !tile) return;
  if (drag.at && drag.at[0] === tile[0] && drag.at[1] === tile[1]) return;
  drag.at = tile;
  drag.moved = true;
  const [dx, dy] = [tile[0] - drag.start[0], tile[1] - drag.start[1]];
  if (drag.type === "move") setPreview(withRoom(state.layout, movedRoom(drag.room, dx, dy)));
  else if (drag.type === "resize") setPreview(withRoom(state.layout, resizedRoom(drag.room, drag.corner, tile)));
  else if (drag.type === "desk") setPreview(withDesk(state.layout, { ...drag.desk, x: tile[0], y: tile[1] }));
});

canvas.addEventListener("pointerup", (e) => {
  const drag = state.drag;
  if (!drag) return;
  state.drag = null;
  const tile = drag.at;
  setPreview(null);
  if (drag.type === "draw") {
    drawRoom(drag.start, tile);
  } else if (drag.type === "place") {
    placeDesk(tile);
  } else if (drag.type === "move") {
    const room = roomById(drag.room.id) || drag.room;
    const [dx, dy] = [tile[0] - drag.start[0], tile[1] - drag.start[1]];
    if (dx || dy) {
      const moved = movedRoom(room, dx, dy);
      roomUpdate(room, pick(moved, ["x", "y", "doors"]), `Move ${room.name}`);
    } else if (drag.wasSelected && room.kind !== "open" && onEdge(room, tile[0], tile[1])) {
      toggleDoor(room, tile);
    }
  } else if (drag.type === "resize" && drag.moved) {
    const room = roomById(drag.room.id) || drag.room;
    const resized = resizedRoom(room, drag.corner, tile);
    roomUpdate(room, pick(resized, ["x", "y", "width", "height", "doors"]), `Resize ${room.name}`);
  } else if (drag.type === "desk" && (tile[0] !== drag.desk.x || tile[1] !== drag.desk.y)) {
    const desk = deskById(drag.desk.id) || drag.desk;
    deskUpdate(desk, { x: tile[0], y: tile[1] }, `Move ${desk.label}`);
  }
  if (state.layout) refreshSelection();
});

canvas.addEventListener("pointercancel", () => {
  state.drag = null;
  setPreview(null);
});

canvas.addEventListener("pointerleave", () => {
  state.hover = null;
});

function toggleDoor(room, [x, y]) {
  const isDoor = room.doors.some(([dx, dy]) => dx === x && dy === y);
  const doors = isDoor ? room.doors.filter(([dx, dy]) => dx !== x || dy !== y) : [...room.doors, [x, y]];
  return roomUpdate(room, { doors }, `${isDoor ? "Remove" : "Add"} a door of ${room.name} at ${x},${y}`);
}

function nextName(prefix, names) {
  let n = 1;
  while (names.has(`${prefix} ${n}`)) n += 1;
  return `${prefix} ${n}`;
}

async function drawRoom(start, end) {
  const x = Math.min(start[0], end[0]);
  const y = Math.min(start[1], end[1]);
  const width = Math.abs(start[0] - end[0]) + 1;
  const height = Math.abs(start[1] - end[1]) + 1;
  if (width < 3 || height < 3) {
    hint("Drag out at least 3×3 tiles for a room");
    return;
  }
  const name = nextName("Room", new Set(state.layout.rooms.map((r) => r.name)));
  const r = await roomCreate({ name, kind: "meeting", x, y, width, height, doors: [[x + Math.floor(width / 2), y + height - 1]] });
  if (r) {
    setTool("select");
    select("room", r.data.id);
  }
}

async function placeDesk(tile) {
  const label = nextName("Desk", new Set(state.layout.desks.map((d) => d.label)));
  const r = await deskCreate({ label, x: tile[0], y: tile[1] });
  if (r) select("desk", r.data.id);
}

// --- tools, selection and the side forms ---

function setTool(tool) {
  state.tool = tool;
  canvas.dataset.tool = tool;
  for (const b of document.querySelectorAll("[data-tool]")) b.setAttribute("aria-pressed", String(b.dataset.tool === tool));
  hint({ room: "Drag on the map to draw a room", desk: "Click a tile to place a desk" }[tool] || "");
}

for (const b of document.querySelectorAll("button[data-tool]")) b.addEventListener("click", () => setTool(b.dataset.tool));

function select(kind, id) {
  const same = state.selection && kind && state.selection.kind === kind && state.selection.ref.id === id;
  state.selection = kind ? { kind, ref: refFor(kind, id) } : null;
  canvas.dataset.selected = kind ? `${kind}:${id}` : "";
  if (!same) {
    state.roomMembers = null;
    fillForms();
  }
}

/** After a new layout: keep the selection if it still exists, and show its saved values. */
function refreshSelection() {
  const sel = state.selection;
  if (sel && !(sel.kind === "room" ? roomById(sel.ref.id) : deskById(sel.ref.id))) {
    select(null);
    return;
  }
  fillForms({ keepMembers: true });
}

function fillForms({ keepMembers = false } = {}) {
  const sel = state.selection;
  const room = sel && sel.kind === "room" ? roomById(sel.ref.id) : null;
  const desk = sel && sel.kind === "desk" ? deskById(sel.ref.id) : null;
  $("room-form").hidden = !room;
  $("desk-form").hidden = !desk;
  $("editor-empty").hidden = !!(room || desk);
  // A new layout refills the form only when the selected row itself changed (typing survives others' edits).
  const key = JSON.stringify(room || desk || null);
  if (keepMembers && key === state.formKey) return;
  state.formKey = key;
  if (room) {
    $("room-name").value = room.name;
    $("room-kind").value = room.kind;
    $("room-capacity").value = room.capacity ?? "";
    $("room-assistant").checked = !!room.assistant_enabled;
    $("room-geometry").textContent = `${room.width}×${room.height} at ${room.x},${room.y} · doors ${room.doors.map((d) => d.join(",")).join(" ") || "none"}`;
    if (!keepMembers || state.roomMembers === null) loadMembers(room.id);
  }
  if (desk) {
    $("desk-label").value = desk.label;
    $("desk-owner").value = desk.owner == null ? "" : String(desk.owner);
    $("desk-geometry").textContent = `at ${desk.x},${desk.y}`;
  }
}

async function loadMembers(roomId) {
  const select = $("room-members");
  for (const o of select.options) o.selected = false;
  select.disabled = true; // until the saved list is shown, so a choice made meanwhile is not lost
  const r = await apiRequest(`/api/rooms/${roomId}/members/`);
  if (!state.selection || state.selection.kind !== "room" || state.selection.ref.id !== roomId) return;
  state.roomMembers = r.ok ? r.data.users : [];
  const ids = new Set(state.roomMembers.map(String));
  for (const o of select.options) o.selected = ids.has(o.value);
  select.disabled = false;
}

$("room-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const room = state.selection && roomById(state.selection.ref.id);
  if (!room) return;
  const capacity = $("room-capacity").value.trim();
  const wanted = {
    name: $("room-name").value.trim(),
    kind: $("room-kind").value,
    capacity: capacity === "" ? null : Number(capacity),
    assistant_enabled: $("room-assistant").checked,
  };
  const fields = Object.fromEntries(Object.entries(wanted).filter(([k, v]) => room[k] !== v));
  if (Object.keys(fields).length) {
    const r = await roomUpdate(room, fields, `Edit ${room.name}`);
    if (!r) return;
  }
  const after = [...$("room-members").selectedOptions].map((o) => Number(o.value)).sort((a, b) => a - b);
  const before = [...(state.roomMembers || [])].sort((a, b) => a - b);
  if (state.roomMembers !== null && after.join() !== before.join()) {
    const current = roomById(room.id) || room;
    if (await membersUpdate(current, before, after)) state.roomMembers = after;
  }
});

$("room-delete").addEventListener("click", () => {
  const room = state.selection && roomById(state.selection.ref.id);
  if (!room) return;
  if (!window.confirm(`Delete ${room.name}? Its chat and meeting records go with it; undo brings back only the room.`)) return;
  roomDelete(room);
});

$("desk-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const desk = state.selection && deskById(state.selection.ref.id);
  if (!desk) return;
  const owner = $("desk-owner").value;
  const wanted = { label: $("desk-label").value.trim(), owner: owner === "" ? null : Number(owner) };
  const fields = Object.fromEntries(Object.entries(wanted).filter(([k, v]) => desk[k] !== v));
  if (Object.keys(fields).length) deskUpdate(desk, fields, `Edit ${desk.label}`);
});

$("desk-delete").addEventListener("click", () => {
  const desk = state.selection && deskById(state.selection.ref.id);
  if (desk) deskDelete(desk);
});

$("editor-undo").addEventListener("click", () => undo());

window.addEventListener("keydown", (e) => {
  const typing = e.target && ["INPUT", "TEXTAREA", "SELECT"].includes(e.target.tagName);
  if ((e.ctrlKey || e.metaKey) && !e.shiftKey && e.key.toLowerCase() === "z" && !typing) {
    e.preventDefault();
    undo();
  } else if (e.key === "Escape") {
    state.drag = null;
    setPreview(null);
    select(null);
  }
});

// --- import ---

$("editor-import").addEventListener("change", async (e) => {
  const file = e.target.files && e.target.files[0];
  e.target.value = "";
  if (!file) return;
  showError("");
  let doc;
  try {
    doc = JSON.parse(await file.text());
  } catch (err) {
    showError(`${file.name} is not JSON`);
    return;
  }
  status(`Importing ${file.name}…`);
  const r = await apiRequest("/api/maps/import/", { method: "POST", body: doc });
  if (!r.ok) {
    showError(`Import refused: ${r.message}`);
    status("");
    return;
  }
  location.assign(`/office/${r.data.id}/edit/`);
});

// --- members (the forms' choices) ---

async function loadDirectory() {
  const r = await apiRequest("/api/members/");
  if (!r.ok) return;
  state.members = new Map(r.data.map((m) => [m.id, m]));
  state.membersVersion += 1;
  const options = () => r.data.map((m) => {
    const o = el("option", null, `${m.name} (${m.username})`);
    o.value = String(m.id);
    return o;
  });
  $("room-members").replaceChildren(...options());
  $("desk-owner").replaceChildren(Object.assign(el("option", null, "nobody"), { value: "" }), ...options());
  fillForms({ keepMembers: false });
}

// --- live ---

const live = document.getElementById("editor-live");
const socket = new ReconnectingSocket(`/ws/maps/${mapId}/edit/`, {
  onFrame: (f) => {
    if ((f.type === "hello" || f.type === "map.changed") && f.map) {
      // Our own writes come back here too; only someone else's change is worth a word.
      if (f.type === "map.changed" && state.layout && !state.busy && performance.now() > state.quietUntil) {
        status("Someone else changed the map");
      }
      applyLayout(f.map);
    } else if (f.type === "error" && f.fatal) {
      showError(f.message);
      if (f.code === "not_signed_in") location.assign(loginUrl());
    }
  },
  onState: (s) => {
    if (!live) return;
    live.dataset.state = s;
    live.textContent = s === "connected" ? "live" : s;
  },
  onClose: (e) => e.code !== 4401 && e.code !== 4403,
});

// --- drawing ---

function frame() {
  const sel = state.selection;
  const shown = state.preview || state.layout;
  let selection = null;
  if (shown && sel) {
    const item = (sel.kind === "room" ? shown.rooms : shown.desks).find((r) => r.id === sel.ref.id);
    if (item) selection = sel.kind === "room" ? item : { x: item.x, y: item.y, width: 1, height: 1 };
  }
  let ghost = null;
  const drag = state.drag;
  if (drag && drag.type === "draw" && drag.at) {
    const width = Math.abs(drag.start[0] - drag.at[0]) + 1;
    const height = Math.abs(drag.start[1] - drag.at[1]) + 1;
    ghost = { x: Math.min(drag.start[0], drag.at[0]), y: Math.min(drag.start[1], drag.at[1]), width, height, ok: width >= 3 && height >= 3 };
  }
  renderer.drawEditor(state.geo, state, {
    selection, ghost, hover: state.tool !== "select" ? state.hover : null,
    handles: !!(selection && sel.kind === "room" && state.tool === "select"),
  });
  requestAnimationFrame(frame);
}

setTool("select");
renderHistory();
loadDirectory();
socket.connect();
requestAnimationFrame(frame);

// For end-to-end tests and debugging: the layout shown, and the screen point of a tile.
window.mapEditor = {
  state,
  get layout() {
    return state.layout;
  },
  /** Client (viewport) coordinates of the centre of tile (x, y). */
  tileToClient(x, y) {
    const rect = canvas.getBoundingClientRect();
    const [px, py] = renderer.px(x + 0.5, y + 0.5);
    return [rect.left + px, rect.top + py];
  },
  /** Client coordinates of a corner of the selected room ("nw", "ne", "sw", "se"). */
  handleToClient(corner) {
    const room = state.selection && roomById(state.selection.ref.id);
    if (!room) return null;
    const rect = canvas.getBoundingClientRect();
    const [px, py] = renderer.handlePoints(room).find((h) => h[2] === corner);
    return [rect.left + px, rect.top + py];
  },
  select,
  undo,
};
