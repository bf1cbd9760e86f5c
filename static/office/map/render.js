// Canvas drawing of the office map: canvas size, tile size and camera, the cached static layer
// (floor, walls, doors, desks, room names), occupancy badges, avatars, the hover tile and walk preview.

import { watchCanvasSize } from "../lib/canvas.js";
import { initialsOf, safeColor } from "../lib/format.js";

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

/** Where an interpolated position {fx, fy, tx, ty, t0, dur} is at `now` (ease-out). */
export function lerp(ent, now) {
  if (!ent.dur) return { x: ent.tx, y: ent.ty };
  const t = Math.min(1, (now - ent.t0) / ent.dur);
  const k = t < 1 ? 1 - (1 - t) * (1 - t) : 1; // ease-out
  return { x: ent.fx + (ent.tx - ent.fx) * k, y: ent.fy + (ent.ty - ent.fy) * k };
}

/** Draws a MapView onto its canvas; owns the canvas size, the tile size and the camera. */
export class MapRenderer {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.staticLayer = null;
    this.staticKey = "";
    this.cssW = 0;
    this.cssH = 0;
    this.dpr = 1;
    this.tile = 28;
    this.cam = { x: 0, y: 0 };
    this._observeSize();
  }

  /** The static layer is drawn again on the next frame (new layout, member names for desks). */
  invalidate() {
    this.staticKey = "";
  }

  /** The tile under a pointer event's client position, or null off the map. */
  tileAt(geo, clientX, clientY) {
    const rect = this.canvas.getBoundingClientRect();
    const px = clientX - rect.left;
    const py = clientY - rect.top;
    const x = Math.floor(px / this.tile + this.cam.x);
    const y = Math.floor(py / this.tile + this.cam.y);
    return geo.inBounds(x, y) ? [x, y] : null;
  }

  /** Screen position (CSS px, relative to the canvas) of the centre of tile (x, y). */
  tileToScreen(x, y) {
    return [(x + 0.5 - this.cam.x) * this.tile, (y + 0.5 - this.cam.y) * this.tile];
  }

  _observeSize() {
    watchCanvasSize(this, (w, h) => {
      const tile = Math.floor(Math.min(w / VIEW_TILES_X, h / VIEW_TILES_Y));
      this.tile = Math.max(TILE_MIN, Math.min(TILE_MAX, tile || TILE_MIN));
    });
  }

  _buildStatic(geo, state) {
    const tile = this.tile;
    let scale = this.dpr;
    const maxDim = 8192;
    scale = Math.min(scale, maxDim / (geo.width * tile), maxDim / (geo.height * tile));
    const key = `${tile}|${scale}|${state.membersVersion || 0}`;
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
      const m = state.members.get(id);
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

  /** Draw one frame of `view` (a MapView); returns the users drawn besides me, or null before a hello. */
  draw(view, now) {
    const ctx = this.ctx;
    const { cssW, cssH, dpr } = this;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = OUTSIDE;
    ctx.fillRect(0, 0, cssW, cssH);
    if (!view.geo || !view.state.me) {
      ctx.fillStyle = "#9aa6bd";
      ctx.font = "600 14px system-ui, sans-serif";
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText(view.socket.state === "connected" ? "Loading the office…" : "Connecting to the office…", cssW / 2, cssH / 2);
      return null;
    }
    const { geo, state } = view;
    const tile = this.tile;
    this._buildStatic(geo, state);

    const me = view.meDisp ? lerp(view.meDisp, now) : { x: state.you.x, y: state.you.y };
    const viewW = cssW / tile;
    const viewH = cssH / tile;
    const camFor = (center, span, size) => {
      if (size + 2 <= span) return (size - span) / 2;
      return Math.max(-1, Math.min(size + 1 - span, center - span / 2));
    };
    this.cam.x = camFor(me.x + 0.5, viewW, geo.width);
    this.cam.y = camFor(me.y + 0.5, viewH, geo.height);
    const ox = -this.cam.x * tile;
    const oy = -this.cam.y * tile;

    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(this.staticLayer, ox, oy, geo.width * tile, geo.height * tile);
    ctx.imageSmoothingEnabled = true;
    this._drawOccupancy(ctx, geo, view.occupancy, ox, oy);

    // hover tile
    if (view.hover) {
      const [hx, hy] = view.hover;
      const ok = geo.passable(hx, hy) && view.allowedTile(hx, hy);
      ctx.strokeStyle = ok ? "rgba(79, 70, 229, 0.7)" : "rgba(220, 38, 38, 0.7)";
      ctx.lineWidth = 2;
      roundRect(ctx, ox + hx * tile + 2, oy + hy * tile + 2, tile - 4, tile - 4, 5);
      ctx.stroke();
    }

    // path preview
    if (view.path.length) {
      ctx.fillStyle = "rgba(79, 70, 229, 0.45)";
      for (const [px, py] of view.path) {
        ctx.beginPath();
        ctx.arc(ox + (px + 0.5) * tile, oy + (py + 0.5) * tile, Math.max(2, tile * 0.08), 0, Math.PI * 2);
        ctx.fill();
      }
      if (view.pathGoal) {
        const [gx, gy] = view.pathGoal;
        ctx.strokeStyle = "rgba(79, 70, 229, 0.9)";
        ctx.lineWidth = 2;
        ctx.beginPath();
        ctx.arc(ox + (gx + 0.5) * tile, oy + (gy + 0.5) * tile, tile * 0.32, 0, Math.PI * 2);
        ctx.stroke();
      }
    }

    // avatars (others within the area of interest, then me on top)
    const drawn = [];
    for (const user of view.visibleUsers()) {
      let ent = view.entities.get(user);
      if (!ent) {
        const pos = state.positions.get(user);
        ent = { fx: pos.x, fy: pos.y, tx: pos.x, ty: pos.y, t0: now, dur: 0 };
        view.entities.set(user, ent);
      }
      const p = lerp(ent, now);
      drawn.push({ user, x: p.x, y: p.y, person: state.presence.get(user) });
    }
    drawn.sort((a, b) => a.y - b.y);
    for (const d of drawn) this._drawAvatar(ctx, state, ox, oy, d.x, d.y, d.person, false);
    const mePerson = state.presence.get(state.me.id) || state.me;
    this._drawAvatar(ctx, state, ox, oy, me.x, me.y, { ...mePerson, name: state.me.name, color: state.me.color, status: state.me.status }, true);
    return drawn.map((d) => d.user);
  }

  /** Live head counts from sensors (iot), a badge in each room's top right corner. */
  _drawOccupancy(ctx, geo, occupancy, ox, oy) {
    if (!occupancy.size) return;
    const tile = this.tile;
    for (const [roomId, o] of occupancy) {
      const room = geo.roomById.get(roomId);
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

  _drawAvatar(ctx, state, ox, oy, x, y, person, isMe) {
    const tile = this.tile;
    const cx = ox + (x + 0.5) * tile;
    const cy = oy + (y + 0.5) * tile;
    const r = tile * 0.4;
    // shadow
    ctx.fillStyle = "rgba(15, 23, 42, 0.18)";
    ctx.beginPath();
    ctx.ellipse(cx, cy + r * 0.9, r * 0.85, r * 0.3, 0, 0, Math.PI * 2);
    ctx.fill();
    const speaking = state.speaking && person && state.speaking.has(person.user ?? (isMe ? state.me.id : null));
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
    ctx.fillText(initialsOf(person && person.name), cx, cy + 0.5);
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
