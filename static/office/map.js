// The 2D office map: layout geometry, canvas rendering (camera, interpolation, area of interest)
// and movement input (keyboard steps, click-to-walk along a BFS path).

export const STEP_MS = 200; // never more than 5 moves per second
const LERP_OTHERS_MS = 180;
const LERP_ME_MS = 110;
const VIEW_TILES_X = 30;
const VIEW_TILES_Y = 20;
const TILE_MIN = 24;
const TILE_MAX = 32;

const KIND_STYLE = {
  open: { fill: "rgba(16, 185, 129, 0.07)", border: "rgba(16, 150, 110, 0.45)", label: "#0f766e" },
  meeting: { fill: "#e3edff", border: "#9db7ea", label: "#1e40af" },
  private: { fill: "#f1e8ff", border: "#c4a9ef", label: "#6b21a8" },
};
const STATUS_COLOR = { available: "#16a34a", busy: "#dc2626", away: "#8a93a5" };
const FLOOR = "#eef1f6";
const GRID = "rgba(120, 135, 160, 0.10)";
const WALL = "#2f3b4f";
const WALL_TOP = "#46546c";
const DOOR = "#f59e0b";
const OUTSIDE = "#1b2232";

const KEY_DIRS = {
  ArrowUp: [0, -1], ArrowDown: [0, 1], ArrowLeft: [-1, 0], ArrowRight: [1, 0],
  KeyW: [0, -1], KeyS: [0, 1], KeyA: [-1, 0], KeyD: [1, 0],
  w: [0, -1], s: [0, 1], a: [-1, 0], d: [1, 0], W: [0, -1], S: [0, 1], A: [-1, 0], D: [1, 0],
};

export function initials(name) {
  const parts = String(name || "?").trim().split(/\s+/).filter(Boolean);
  if (!parts.length) return "?";
  const first = parts[0][0] || "";
  const last = parts.length > 1 ? parts[parts.length - 1][0] : (parts[0][1] || "");
  return (first + last).toUpperCase();
}

export function isTextEntry(el) {
  if (!el) return false;
  if (el.isContentEditable) return true;
  const tag = el.tagName;
  if (tag === "TEXTAREA" || tag === "SELECT") return true;
  if (tag !== "INPUT") return false;
  const type = (el.type || "text").toLowerCase();
  return !["button", "submit", "reset", "checkbox", "radio", "range", "color", "file", "image"].includes(type);
}

/** Walls, doors and "which room is this tile in" for a map layout (mirrors rooms/geometry.py). */
export function compileLayout(layout) {
  const width = layout.width | 0;
  const height = layout.height | 0;
  const size = width * height;
  const rooms = (layout.rooms || []).map((r) => ({ ...r, doors: r.doors || [] }));
  const roomById = new Map(rooms.map((r) => [r.id, r]));
  const roomIndex = new Int32Array(size).fill(-1);
  const walls = new Uint8Array(size);
  const doors = new Uint8Array(size);
  const byArea = rooms.map((r, i) => [r, i]).sort((a, b) => b[0].width * b[0].height - a[0].width * a[0].height);
  for (const [r, i] of byArea) {
    for (let x = Math.max(0, r.x); x < Math.min(width, r.x + r.width); x++) {
      for (let y = Math.max(0, r.y); y < Math.min(height, r.y + r.height); y++) roomIndex[y * width + x] = i;
    }
  }
  const mark = (x, y, r) => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    const isDoor = r.doors.some(([dx, dy]) => dx === x && dy === y);
    if (isDoor) doors[y * width + x] = 1;
    else walls[y * width + x] = 1;
  };
  for (const r of rooms) {
    if (r.kind === "open") continue;
    for (let x = r.x; x < r.x + r.width; x++) {
      mark(x, r.y, r);
      mark(x, r.y + r.height - 1, r);
    }
    for (let y = r.y + 1; y < r.y + r.height - 1; y++) {
      mark(r.x, y, r);
      mark(r.x + r.width - 1, y, r);
    }
  }
  const geo = {
    layout, width, height, rooms, roomById, roomIndex, walls, doors,
    aoi: Math.max(1, layout.aoi_cell | 0 || 16),
    desks: layout.desks || [],
    inBounds: (x, y) => x >= 0 && y >= 0 && x < width && y < height,
    isWall: (x, y) => !geo.inBounds(x, y) || walls[y * width + x] === 1,
    passable: (x, y) => geo.inBounds(x, y) && walls[y * width + x] === 0,
    isDoor: (x, y) => geo.inBounds(x, y) && doors[y * width + x] === 1 && walls[y * width + x] === 0,
    roomAt: (x, y) => {
      if (!geo.inBounds(x, y)) return null;
      const i = roomIndex[y * width + x];
      return i < 0 ? null : rooms[i];
    },
    /** Physical legality of one step (bounds, walls, no cutting wall corners). */
    canStep: (x0, y0, x1, y1) => {
      if (Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0)) !== 1) return false;
      if (!geo.passable(x1, y1)) return false;
      if (x1 !== x0 && y1 !== y0 && (geo.isWall(x1, y0) || geo.isWall(x0, y1))) return false;
      return true;
    },
  };
  return geo;
}

/** Shortest 8-neighbour path from start to goal (excluding start), or null. */
export function findPath(geo, start, goal, allowed = () => true) {
  const { width, height } = geo;
  const [sx, sy] = start;
  const [gx, gy] = goal;
  if (!geo.inBounds(gx, gy) || !geo.passable(gx, gy) || !allowed(gx, gy)) return null;
  if (sx === gx && sy === gy) return [];
  const prev = new Int32Array(width * height).fill(-1);
  const startI = sy * width + sx;
  const goalI = gy * width + gx;
  prev[startI] = startI;
  const queue = new Int32Array(width * height);
  let head = 0;
  let tail = 0;
  queue[tail++] = startI;
  // Orthogonal first so paths prefer straight lines.
  const dirs = [[1, 0], [-1, 0], [0, 1], [0, -1], [1, 1], [1, -1], [-1, 1], [-1, -1]];
  while (head < tail) {
    const i = queue[head++];
    if (i === goalI) break;
    const x = i % width;
    const y = (i / width) | 0;
    for (const [dx, dy] of dirs) {
      const nx = x + dx;
      const ny = y + dy;
      if (!geo.inBounds(nx, ny)) continue;
      const ni = ny * width + nx;
      if (prev[ni] !== -1) continue;
      if (!geo.canStep(x, y, nx, ny) || !allowed(nx, ny)) continue;
      prev[ni] = i;
      queue[tail++] = ni;
    }
  }
  if (prev[goalI] === -1) return null;
  const path = [];
  for (let i = goalI; i !== startI; i = prev[i]) path.push([i % width, (i / width) | 0]);
  return path.reverse();
}

export class MapView {
  constructor({ canvas, state, socket, notice, onMoved }) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.state = state;
    this.socket = socket;
    this.notice = notice || (() => {});
    this.onMoved = onMoved || (() => {});
    this.geo = null;
    this.entities = new Map(); // user -> {fx, fy, tx, ty, t0, dur}
    this.meDisp = null; // {fx, fy, tx, ty, t0, dur}
    this.path = [];
    this.pathGoal = null;
    this.held = []; // held direction keys, most recent last
    this.taps = []; // queued single steps
    this.lastStepAt = 0;
    this.rejectQuietUntilSeq = 0;
    this.hover = null;
    this.staticLayer = null;
    this.staticKey = "";
    this.cssW = 0;
    this.cssH = 0;
    this.dpr = 1;
    this.tile = 28;
    this.cam = { x: 0, y: 0 };
    this.occupancy = new Map(); // room id -> {count, present, at} from sensors (iot)
    this._watchOccupancy();
    this._bindInput();
    this._observeSize();
    this.moveTimer = setInterval(() => this._movementTick(), 40);
    const loop = (now) => {
      this._frame(now);
      this.raf = requestAnimationFrame(loop);
    };
    this.raf = requestAnimationFrame(loop);
  }

  // --- data in ---

  setLayout(layout) {
    this.geo = compileLayout(layout);
    this.state.geo = this.geo;
    this.staticKey = "";
    this.path = [];
    this.pathGoal = null;
  }

  /** Someone's static decorations changed (e.g. member names for desks). */
  invalidateStatic() {
    this.staticKey = "";
  }

  /** Called after hello: forget interpolation state and place me. */
  reset() {
    this.entities.clear();
    const { x, y } = this.state.you;
    this.meDisp = { fx: x, fy: y, tx: x, ty: y, t0: 0, dur: 0 };
    this.path = [];
    this.pathGoal = null;
    this.taps = [];
    for (const [user, pos] of this.state.positions) {
      if (user !== this.state.me.id) this.entities.set(user, { fx: pos.x, fy: pos.y, tx: pos.x, ty: pos.y, t0: 0, dur: 0 });
    }
  }

  applyMoves(entries) {
    const now = performance.now();
    const me = this.state.me && this.state.me.id;
    for (const entry of entries) {
      const [user, x, y, seq] = entry;
      if (user === me) {
        // The server echoes our own moves; our prediction is already ahead of it.
        continue;
      }
      this.state.positions.set(user, { x, y, seq });
      const ent = this.entities.get(user);
      if (!ent) {
        this.entities.set(user, { fx: x, fy: y, tx: x, ty: y, t0: now, dur: 0 });
        continue;
      }
      const cur = this._lerp(ent, now);
      const far = Math.abs(cur.x - x) > 3 || Math.abs(cur.y - y) > 3;
      ent.fx = far ? x : cur.x;
      ent.fy = far ? y : cur.y;
      ent.tx = x;
      ent.ty = y;
      ent.t0 = now;
      ent.dur = far ? 0 : LERP_OTHERS_MS;
    }
  }

  forget(user) {
    this.entities.delete(user);
    this.state.positions.delete(user);
  }

  onRejected(frame) {
    const quiet = frame.seq <= this.rejectQuietUntilSeq && frame.seq !== 0;
    this.rejectQuietUntilSeq = Math.max(this.rejectQuietUntilSeq, this.state.moveSeq);
    this.path = [];
    this.pathGoal = null;
    this.taps = [];
    this._placeMe(frame.x, frame.y, false);
    if (!quiet && frame.reason) this.notice(frame.reason, "warn");
  }

  // --- movement ---

  /** Whether (x, y) may be entered on a walk: private rooms need membership. */
  allowedTile(x, y) {
    const room = this.geo.roomAt(x, y);
    if (!room || room.kind !== "private") return true;
    if (room.id === this.state.you.room) return true;
    return this.state.memberRooms.has(room.id);
  }

  canMove() {
    return !!(this.geo && this.state.ready && this.socket.isOpen);
  }

  /** One step by (dx, dy); diagonals that are blocked slide along an axis. Returns true if sent. */
  step(dx, dy) {
    if (!this.canMove()) return false;
    const { x, y } = this.state.you;
    const tries = dx && dy ? [[dx, dy], [dx, 0], [0, dy]] : [[dx, dy]];
    for (const [sx, sy] of tries) {
      if (!sx && !sy) continue;
      if (this.geo.canStep(x, y, x + sx, y + sy)) return this._sendStep(x + sx, y + sy);
    }
    return false;
  }

  walkTo(tx, ty) {
    if (!this.geo) return false;
    const room = this.geo.roomAt(tx, ty);
    if (!this.geo.passable(tx, ty)) {
      this.notice("You can't stand there", "warn");
      return false;
    }
    if (!this.allowedTile(tx, ty)) {
      this.notice(`${room.name} is private: members only`, "warn");
      return false;
    }
    const path = findPath(this.geo, [this.state.you.x, this.state.you.y], [tx, ty], (x, y) => this.allowedTile(x, y));
    if (!path) {
      this.notice("There is no way to get there", "warn");
      return false;
    }
    this.taps = [];
    this.path = path;
    this.pathGoal = path.length ? [tx, ty] : null;
    this._movementTick();
    return true;
  }

  stopWalking() {
    this.path = [];
    this.pathGoal = null;
  }

  _sendStep(nx, ny) {
    const seq = ++this.state.moveSeq;
    if (!this.socket.send({ type: "move", x: nx, y: ny, seq })) {
      this.state.moveSeq -= 1;
      return false;
    }
    this.lastStepAt = performance.now();
    this._placeMe(nx, ny, true);
    return true;
  }

  _placeMe(x, y, animate) {
    const now = performance.now();
    const cur = this.meDisp ? this._lerp(this.meDisp, now) : { x, y };
    const far = Math.abs(cur.x - x) > 2 || Math.abs(cur.y - y) > 2;
    this.meDisp = { fx: cur.x, fy: cur.y, tx: x, ty: y, t0: now, dur: animate && !far ? LERP_ME_MS : 0 };
    this.state.you.x = x;
    this.state.you.y = y;
    this.state.positions.set(this.state.me.id, { x, y, seq: this.state.moveSeq });
    const room = this.geo ? this.geo.roomAt(x, y) : null;
    this.onMoved({ x, y, room: room ? room.id : null });
  }

  _heldDir() {
    let dx = 0;
    let dy = 0;
    // The most recent key per axis wins.
    for (const key of this.held) {
      const d = KEY_DIRS[key];
      if (d[0]) dx = d[0];
      if (d[1]) dy = d[1];
    }
    return dx || dy ? [dx, dy] : null;
  }

  _movementTick() {
    if (!this.canMove()) return;
    const now = performance.now();
    if (now - this.lastStepAt < STEP_MS) return;
    if (this.taps.length) {
      const [dx, dy] = this.taps.shift();
      this.step(dx, dy);
      return;
    }
    const dir = this._heldDir();
    if (dir) {
      this.step(dir[0], dir[1]);
      return;
    }
    if (this.path.length) {
      const [nx, ny] = this.path[0];
      const { x, y } = this.state.you;
      if (this.geo.canStep(x, y, nx, ny) && this.allowedTile(nx, ny)) {
        this.path.shift();
        if (!this._sendStep(nx, ny)) this.path.unshift([nx, ny]);
      } else if (this.pathGoal) {
        const again = findPath(this.geo, [x, y], this.pathGoal, (px, py) => this.allowedTile(px, py));
        this.path = again || [];
      } else {
        this.path = [];
      }
      if (!this.path.length) this.pathGoal = null;
    }
  }

  // --- input ---

  _bindInput() {
    window.addEventListener("keydown", (e) => {
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      const key = KEY_DIRS[e.code] ? e.code : (KEY_DIRS[e.key] ? e.key : null);
      if (!key || isTextEntry(e.target) || isTextEntry(document.activeElement)) return;
      // Arrow keys inside a list widget (the conversation list) navigate the list instead.
      if (key.startsWith("Arrow") && e.target && e.target.closest && e.target.closest("[role=listbox]")) return;
      e.preventDefault();
      this.stopWalking();
      const canonical = e.code && KEY_DIRS[e.code] ? e.code : key;
      if (!e.repeat) {
        if (this.taps.length < 4) this.taps.push(KEY_DIRS[canonical]);
      }
      if (!this.held.includes(canonical)) this.held.push(canonical);
      this._movementTick();
    });
    window.addEventListener("keyup", (e) => {
      const key = KEY_DIRS[e.code] ? e.code : e.key;
      this.held = this.held.filter((k) => k !== key && k !== e.key && k !== e.code);
    });
    window.addEventListener("blur", () => {
      this.held = [];
    });
    this.canvas.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      const tile = this._tileAt(e);
      if (!tile) return;
      this.canvas.focus({ preventScroll: true });
      if (!this.canMove()) return;
      this.walkTo(tile[0], tile[1]);
    });
    this.canvas.addEventListener("pointermove", (e) => {
      this.hover = this._tileAt(e);
    });
    this.canvas.addEventListener("pointerleave", () => {
      this.hover = null;
    });
  }

  _tileAt(e) {
    if (!this.geo) return null;
    const rect = this.canvas.getBoundingClientRect();
    const px = e.clientX - rect.left;
    const py = e.clientY - rect.top;
    const x = Math.floor(px / this.tile + this.cam.x);
    const y = Math.floor(py / this.tile + this.cam.y);
    return this.geo.inBounds(x, y) ? [x, y] : null;
  }

  /** Screen position (CSS px, relative to the canvas) of the centre of tile (x, y). */
  tileToScreen(x, y) {
    return [(x + 0.5 - this.cam.x) * this.tile, (y + 0.5 - this.cam.y) * this.tile];
  }

  _observeSize() {
    const resize = () => {
      const rect = this.canvas.getBoundingClientRect();
      const dpr = Math.min(window.devicePixelRatio || 1, 2);
      const w = Math.max(1, Math.round(rect.width));
      const h = Math.max(1, Math.round(rect.height));
      if (w === this.cssW && h === this.cssH && dpr === this.dpr) return;
      this.cssW = w;
      this.cssH = h;
      this.dpr = dpr;
      this.canvas.width = Math.round(w * dpr);
      this.canvas.height = Math.round(h * dpr);
      const tile = Math.floor(Math.min(w / VIEW_TILES_X, h / VIEW_TILES_Y));
      this.tile = Math.max(TILE_MIN, Math.min(TILE_MAX, tile || TILE_MIN));
    };
    resize();
    if (typeof ResizeObserver !== "undefined") new ResizeObserver(resize).observe(this.canvas);
    window.addEventListener("resize", resize);
  }

  // --- visibility (area of interest) ---

  isVisible(user) {
    const st = this.state;
    const pos = st.positions.get(user);
    const person = st.presence.get(user);
    if (!pos || !person || !this.geo) return false;
    const room = person.room != null ? this.geo.roomById.get(person.room) : null;
    if (room && room.kind === "private") {
      // Only people in the private room you are standing in.
      return room.id === st.you.room;
    }
    const cell = this.geo.aoi;
    const mx = Math.floor(st.you.x / cell);
    const my = Math.floor(st.you.y / cell);
    return Math.abs(Math.floor(pos.x / cell) - mx) <= 1 && Math.abs(Math.floor(pos.y / cell) - my) <= 1;
  }

  visibleUsers() {
    const me = this.state.me && this.state.me.id;
    return [...this.state.presence.keys()].filter((u) => u !== me && this.isVisible(u));
  }

  // --- rendering ---

  _lerp(ent, now) {
    if (!ent.dur) return { x: ent.tx, y: ent.ty };
    const t = Math.min(1, (now - ent.t0) / ent.dur);
    const k = t < 1 ? 1 - (1 - t) * (1 - t) : 1; // ease-out
    return { x: ent.fx + (ent.tx - ent.fx) * k, y: ent.fy + (ent.ty - ent.fy) * k };
  }

  _buildStatic() {
    const geo = this.geo;
    const tile = this.tile;
    let scale = this.dpr;
    const maxDim = 8192;
    scale = Math.min(scale, maxDim / (geo.width * tile), maxDim / (geo.height * tile));
    const key = `${tile}|${scale}|${this.state.membersVersion || 0}`;
    if (this.staticLayer && this.staticKey === key) return;
    const layer = this.staticLayer || document.createElement("canvas");
    layer.width = Math.max(1, Math.round(geo.width * tile * scale));
    layer.height = Math.max(1, Math.round(geo.height * tile * scale));
    const c = layer.getContext("2d");
    c.setTransform(scale, 0, 0, scale, 0, 0);
    const W = geo.width * tile;
    const H = geo.height * tile;

    c.fillStyle = FLOOR;
    c.fillRect(0, 0, W, H);

    const ordered = [...geo.rooms].sort((a, b) => b.width * b.height - a.width * a.height);
    for (const r of ordered) {
      const style = KIND_STYLE[r.kind] || KIND_STYLE.open;
      const rx = r.x * tile;
      const ry = r.y * tile;
      const rw = r.width * tile;
      const rh = r.height * tile;
      const wholeMap = r.x <= 0 && r.y <= 0 && r.width >= geo.width && r.height >= geo.height;
      if (r.kind !== "open") {
        c.fillStyle = FLOOR;
        c.fillRect(rx, ry, rw, rh);
      }
      if (!wholeMap) {
        c.fillStyle = style.fill;
        c.fillRect(rx, ry, rw, rh);
      }
      if (r.kind === "open" && !wholeMap) {
        c.save();
        c.setLineDash([6, 5]);
        c.strokeStyle = style.border;
        c.lineWidth = 1.5;
        c.strokeRect(rx + 1, ry + 1, rw - 2, rh - 2);
        c.restore();
      }
    }

    // grid
    c.strokeStyle = GRID;
    c.lineWidth = 1;
    c.beginPath();
    for (let x = 1; x < geo.width; x++) {
      c.moveTo(x * tile + 0.5, 0);
      c.lineTo(x * tile + 0.5, H);
    }
    for (let y = 1; y < geo.height; y++) {
      c.moveTo(0, y * tile + 0.5);
      c.lineTo(W, y * tile + 0.5);
    }
    c.stroke();

    // walls and doors
    for (let y = 0; y < geo.height; y++) {
      for (let x = 0; x < geo.width; x++) {
        const i = y * geo.width + x;
        if (geo.walls[i]) {
          c.fillStyle = WALL;
          c.fillRect(x * tile, y * tile, tile, tile);
          if (!geo.isWall(x, y - 1) || y === 0) {
            c.fillStyle = WALL_TOP;
            c.fillRect(x * tile, y * tile, tile, Math.max(2, tile * 0.18));
          }
        } else if (geo.doors[i]) {
          const horizontal = geo.isWall(x - 1, y) || geo.isWall(x + 1, y);
          c.fillStyle = "rgba(245, 158, 11, 0.22)";
          c.fillRect(x * tile, y * tile, tile, tile);
          c.fillStyle = DOOR;
          const t = Math.max(3, tile * 0.14);
          if (horizontal) {
            c.fillRect(x * tile, y * tile, t, tile);
            c.fillRect((x + 1) * tile - t, y * tile, t, tile);
          } else {
            c.fillRect(x * tile, y * tile, tile, t);
            c.fillRect(x * tile, (y + 1) * tile - t, tile, t);
          }
        }
      }
    }

    // desks
    const memberName = (id) => {
      const m = this.state.members.get(id);
      return m ? String(m.name || m.username).split(/\s+/)[0] : "";
    };
    for (const d of geo.desks) {
      const dx = d.x * tile;
      const dy = d.y * tile;
      c.fillStyle = "rgba(15, 23, 42, 0.12)";
      roundRect(c, dx + tile * 0.06, dy + tile * 0.22, tile * 0.92, tile * 0.62, 4);
      c.fill();
      c.fillStyle = "#c9a27e";
      roundRect(c, dx + tile * 0.04, dy + tile * 0.16, tile * 0.92, tile * 0.6, 4);
      c.fill();
      c.fillStyle = "#3b4456";
      c.fillRect(dx + tile * 0.3, dy + tile * 0.24, tile * 0.4, tile * 0.22);
      c.fillStyle = "#8b6b4e";
      c.fillRect(dx + tile * 0.46, dy + tile * 0.46, tile * 0.08, tile * 0.08);
      const label = d.owner ? `${d.label} · ${memberName(d.owner)}` : d.label;
      c.font = `600 ${Math.max(9, Math.round(tile * 0.34))}px system-ui, sans-serif`;
      c.textAlign = "center";
      c.textBaseline = "top";
      c.fillStyle = "#5b6476";
      c.fillText(label.replace(/ · $/, ""), dx + tile / 2, dy + tile * 0.82);
    }

    // room names
    for (const r of ordered) {
      if (r.x <= 0 && r.y <= 0 && r.width >= geo.width && r.height >= geo.height) continue; // the floor itself
      const style = KIND_STYLE[r.kind] || KIND_STYLE.open;
      const inset = r.kind === "open" ? 0.25 : 1.2;
      const tx = (r.x + inset) * tile;
      const ty = (r.y + inset) * tile;
      c.font = `700 ${Math.max(11, Math.round(tile * 0.45))}px system-ui, sans-serif`;
      c.textAlign = "left";
      c.textBaseline = "top";
      let text = r.name;
      if (r.capacity) text += `  ·  ${r.capacity}`;
      const w = c.measureText(text).width;
      const lock = r.kind === "private" ? tile * 0.5 : 0;
      c.fillStyle = "rgba(255, 255, 255, 0.75)";
      roundRect(c, tx - 6, ty - 3, w + 12 + lock, Math.max(11, tile * 0.45) + 8, 6);
      c.fill();
      c.fillStyle = style.label;
      if (lock) drawLock(c, tx, ty + 1, tile * 0.36, style.label);
      c.fillText(text, tx + lock, ty + 1);
    }

    this.staticLayer = layer;
    this.staticKey = key;
  }

  _frame(now) {
    const ctx = this.ctx;
    const { cssW, cssH, dpr } = this;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = OUTSIDE;
    ctx.fillRect(0, 0, cssW, cssH);
    if (!this.geo || !this.state.me) {
      ctx.fillStyle = "#9aa6bd";
      ctx.font = "600 14px system-ui, sans-serif";
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText(this.socket.state === "connected" ? "Loading the office…" : "Connecting to the office…", cssW / 2, cssH / 2);
      return;
    }
    const geo = this.geo;
    const tile = this.tile;
    this._buildStatic();

    const me = this.meDisp ? this._lerp(this.meDisp, now) : { x: this.state.you.x, y: this.state.you.y };
    const viewW = cssW / tile;
    const viewH = cssH / tile;
    const camFor = (center, view, size) => {
      if (size + 2 <= view) return (size - view) / 2;
      return Math.max(-1, Math.min(size + 1 - view, center - view / 2));
    };
    this.cam.x = camFor(me.x + 0.5, viewW, geo.width);
    this.cam.y = camFor(me.y + 0.5, viewH, geo.height);
    const ox = -this.cam.x * tile;
    const oy = -this.cam.y * tile;

    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(this.staticLayer, ox, oy, geo.width * tile, geo.height * tile);
    ctx.imageSmoothingEnabled = true;
    this._drawOccupancy(ctx, ox, oy);

    // hover tile
    if (this.hover) {
      const [hx, hy] = this.hover;
      const ok = geo.passable(hx, hy) && this.allowedTile(hx, hy);
      ctx.strokeStyle = ok ? "rgba(79, 70, 229, 0.7)" : "rgba(220, 38, 38, 0.7)";
      ctx.lineWidth = 2;
      roundRect(ctx, ox + hx * tile + 2, oy + hy * tile + 2, tile - 4, tile - 4, 5);
      ctx.stroke();
    }

    // path preview
    if (this.path.length) {
      ctx.fillStyle = "rgba(79, 70, 229, 0.45)";
      for (const [px, py] of this.path) {
        ctx.beginPath();
        ctx.arc(ox + (px + 0.5) * tile, oy + (py + 0.5) * tile, Math.max(2, tile * 0.08), 0, Math.PI * 2);
        ctx.fill();
      }
      if (this.pathGoal) {
        const [gx, gy] = this.pathGoal;
        ctx.strokeStyle = "rgba(79, 70, 229, 0.9)";
        ctx.lineWidth = 2;
        ctx.beginPath();
        ctx.arc(ox + (gx + 0.5) * tile, oy + (gy + 0.5) * tile, tile * 0.32, 0, Math.PI * 2);
        ctx.stroke();
      }
    }

    // avatars (others within the area of interest, then me on top)
    const drawn = [];
    for (const user of this.visibleUsers()) {
      let ent = this.entities.get(user);
      if (!ent) {
        const pos = this.state.positions.get(user);
        ent = { fx: pos.x, fy: pos.y, tx: pos.x, ty: pos.y, t0: now, dur: 0 };
        this.entities.set(user, ent);
      }
      const p = this._lerp(ent, now);
      drawn.push({ user, x: p.x, y: p.y, person: this.state.presence.get(user) });
    }
    drawn.sort((a, b) => a.y - b.y);
    for (const d of drawn) this._drawAvatar(ctx, ox, oy, d.x, d.y, d.person, false);
    const mePerson = this.state.presence.get(this.state.me.id) || this.state.me;
    this._drawAvatar(ctx, ox, oy, me.x, me.y, { ...mePerson, name: this.state.me.name, color: this.state.me.color, status: this.state.me.status }, true);
    this.lastDrawn = drawn.map((d) => d.user);
  }

  // --- live room occupancy from sensors ---

  /** Badges come from /api/iot/occupancy/ after each hello, then from `room.occupancy` frames. */
  _watchOccupancy() {
    this.socket.on("hello", () => {
      fetch(`/api/iot/occupancy/?map=${this.state.mapId}`, { credentials: "same-origin" })
        .then((r) => (r.ok ? r.json() : { rooms: [] }))
        .then((data) => {
          this.occupancy = new Map((data.rooms || []).map((o) => [o.room, o]));
        })
        .catch(() => {});
    });
    this.socket.on("room.occupancy", (f) => this.occupancy.set(f.room, f));
  }

  _drawOccupancy(ctx, ox, oy) {
    if (!this.occupancy.size) return;
    const tile = this.tile;
    for (const [roomId, o] of this.occupancy) {
      const room = this.geo.roomById.get(roomId);
      if (!room) continue;
      const count = Number(o.count) || 0;
      const over = room.capacity != null && count > room.capacity;
      const label = room.capacity != null ? `${count}/${room.capacity}` : String(count);
      ctx.font = `700 ${Math.max(10, Math.round(tile * 0.4))}px system-ui, sans-serif`;
      const w = ctx.measureText(label).width + tile * 0.9;
      const h = Math.max(16, tile * 0.62);
      const x = ox + (room.x + room.width) * tile - w - tile * 0.25;
      const y = oy + room.y * tile + tile * 0.25;
      ctx.fillStyle = over ? "#dc2626" : count > 0 ? "#16a34a" : "rgba(100, 116, 139, 0.85)";
      roundRect(ctx, x, y, w, h, h / 2);
      ctx.fill();
      // a small person glyph, then the count
      const gx = x + tile * 0.35;
      const gy = y + h / 2;
      ctx.fillStyle = "#ffffff";
      ctx.beginPath();
      ctx.arc(gx, gy - h * 0.16, h * 0.14, 0, Math.PI * 2);
      ctx.fill();
      ctx.beginPath();
      ctx.arc(gx, gy + h * 0.3, h * 0.26, Math.PI, 0);
      ctx.fill();
      ctx.textAlign = "left";
      ctx.textBaseline = "middle";
      ctx.fillText(label, gx + tile * 0.25, gy + 0.5);
    }
  }

  _drawAvatar(ctx, ox, oy, x, y, person, isMe) {
    const tile = this.tile;
    const cx = ox + (x + 0.5) * tile;
    const cy = oy + (y + 0.5) * tile;
    const r = tile * 0.4;
    // shadow
    ctx.fillStyle = "rgba(15, 23, 42, 0.18)";
    ctx.beginPath();
    ctx.ellipse(cx, cy + r * 0.9, r * 0.85, r * 0.3, 0, 0, Math.PI * 2);
    ctx.fill();
    const speaking = this.state.speaking && person && this.state.speaking.has(person.user ?? (isMe ? this.state.me.id : null));
    if (speaking) {
      // A pulsing green ring while this person's voice is heard.
      const pulse = 0.5 + 0.5 * Math.sin(performance.now() / 140);
      ctx.strokeStyle = `rgba(34, 197, 94, ${0.55 + 0.35 * pulse})`;
      ctx.lineWidth = 3;
      ctx.beginPath();
      ctx.arc(cx, cy, r + 4 + 2 * pulse, 0, Math.PI * 2);
      ctx.stroke();
    }
    if (isMe) {
      ctx.fillStyle = "rgba(79, 70, 229, 0.22)";
      ctx.beginPath();
      ctx.arc(cx, cy, r + 5, 0, Math.PI * 2);
      ctx.fill();
    }
    ctx.fillStyle = safeColor(person && person.color);
    ctx.beginPath();
    ctx.arc(cx, cy, r, 0, Math.PI * 2);
    ctx.fill();
    ctx.lineWidth = 2;
    ctx.strokeStyle = "#ffffff";
    ctx.stroke();
    ctx.fillStyle = "#ffffff";
    ctx.font = `700 ${Math.round(r * 0.85)}px system-ui, sans-serif`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(initials(person && person.name), cx, cy + 0.5);
    // status dot
    const sr = Math.max(3.5, tile * 0.13);
    const sx = cx + r * 0.72;
    const sy = cy + r * 0.72;
    ctx.beginPath();
    ctx.arc(sx, sy, sr + 1.5, 0, Math.PI * 2);
    ctx.fillStyle = "#ffffff";
    ctx.fill();
    ctx.beginPath();
    ctx.arc(sx, sy, sr, 0, Math.PI * 2);
    ctx.fillStyle = STATUS_COLOR[person && person.status] || STATUS_COLOR.available;
    ctx.fill();
    // name
    const name = (person && person.name) || "";
    ctx.font = `${isMe ? 700 : 600} ${Math.max(10, Math.round(tile * 0.4))}px system-ui, sans-serif`;
    ctx.textBaseline = "top";
    ctx.lineJoin = "round";
    ctx.lineWidth = 3.5;
    ctx.strokeStyle = "rgba(255, 255, 255, 0.92)";
    ctx.strokeText(name, cx, cy + r + 3);
    ctx.fillStyle = isMe ? "#312e81" : "#1f2937";
    ctx.fillText(name, cx, cy + r + 3);
  }
}

function safeColor(color) {
  return typeof color === "string" && /^#[0-9a-fA-F]{3,8}$/.test(color) ? color : "#6366f1";
}

function roundRect(c, x, y, w, h, r) {
  const rr = Math.min(r, w / 2, h / 2);
  c.beginPath();
  c.moveTo(x + rr, y);
  c.arcTo(x + w, y, x + w, y + h, rr);
  c.arcTo(x + w, y + h, x, y + h, rr);
  c.arcTo(x, y + h, x, y, rr);
  c.arcTo(x, y, x + w, y, rr);
  c.closePath();
}

function drawLock(c, x, y, size, color) {
  c.save();
  c.fillStyle = color;
  c.strokeStyle = color;
  c.lineWidth = Math.max(1.5, size * 0.14);
  const bw = size * 0.8;
  const bh = size * 0.55;
  const bx = x;
  const by = y + size * 0.45;
  c.beginPath();
  c.arc(bx + bw / 2, by, bw * 0.3, Math.PI, 0);
  c.stroke();
  roundRect(c, bx, by, bw, bh, 2);
  c.fill();
  c.restore();
}
