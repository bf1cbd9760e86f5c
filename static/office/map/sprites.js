// The map's tile set, drawn here in code (no image files): floors per kind of room, walls, doors,
// desks with a chair, plants, shelves, meeting tables, and avatar discs. Each sprite is drawn once
// per size onto an offscreen canvas and then only copied (drawImage), so a frame with a hundred
// avatars costs a hundred copies, not a hundred paths with text.

import { initialsOf, safeColor } from "../lib/format.js";

const cache = new Map(); // key -> canvas
const CACHE_MAX = 1500; // tiles, avatars and labels of a crowded floor at two zoom levels

function offscreen(w, h) {
  const c = document.createElement("canvas");
  c.width = Math.max(1, Math.ceil(w));
  c.height = Math.max(1, Math.ceil(h));
  return c;
}

/** The sprite `name` at `size` device pixels (cached); `draw(ctx, size)` paints it the first time. */
function cached(key, w, h, draw) {
  let c = cache.get(key);
  if (c) return c;
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value); // oldest first
  c = offscreen(w, h);
  draw(c.getContext("2d"), w, h);
  cache.set(key, c);
  return c;
}

/** A small deterministic hash of a tile, for variation that does not flicker between frames. */
export function tileNoise(x, y, salt = 0) {
  let h = (x * 374761393 + y * 668265263 + salt * 2246822519) | 0;
  h = Math.imul(h ^ (h >>> 13), 1274126177);
  return ((h ^ (h >>> 16)) >>> 0) / 4294967296;
}

export const FLOOR_COLORS = {
  hall: "#e6e9ef",
  open: "#ead9bf",
  meeting: "#c9d6ea",
  private: "#ddd0ee",
};

// --- floors ---

function drawPlanks(c, s, variant) {
  c.fillStyle = FLOOR_COLORS.open;
  c.fillRect(0, 0, s, s);
  const rows = 3;
  const rh = s / rows;
  for (let r = 0; r < rows; r++) {
    const shade = tileNoise(variant, r, 7);
    c.fillStyle = `rgba(150, 105, 60, ${0.05 + shade * 0.08})`;
    c.fillRect(0, r * rh, s, rh);
    c.fillStyle = "rgba(120, 80, 40, 0.22)";
    c.fillRect(0, (r + 1) * rh - Math.max(1, s / 48), s, Math.max(1, s / 48));
    const seam = ((variant + r * 2) % 3) / 3 * s + s * 0.15;
    c.fillRect(seam, r * rh, Math.max(1, s / 48), rh);
  }
}

function drawCarpet(c, s, base, fleck, variant) {
  c.fillStyle = base;
  c.fillRect(0, 0, s, s);
  c.fillStyle = fleck;
  const n = 10;
  for (let i = 0; i < n; i++) {
    const px = tileNoise(variant, i, 1) * s;
    const py = tileNoise(variant, i, 2) * s;
    c.fillRect(px, py, Math.max(1, s / 28), Math.max(1, s / 28));
  }
}

function drawHallTile(c, s, variant) {
  // carpet tiles laid in alternating directions, as in most offices
  c.fillStyle = variant & 1 ? "#e3e6ec" : FLOOR_COLORS.hall;
  c.fillRect(0, 0, s, s);
  c.strokeStyle = "rgba(110, 120, 140, 0.07)";
  c.lineWidth = Math.max(1, s / 48);
  c.beginPath();
  for (let i = 1; i < 4; i++) {
    const p = (i * s) / 4;
    if (variant & 1) {
      c.moveTo(p, 0);
      c.lineTo(p, s);
    } else {
      c.moveTo(0, p);
      c.lineTo(s, p);
    }
  }
  c.stroke();
  c.strokeStyle = "rgba(110, 120, 140, 0.12)";
  c.strokeRect(0, 0, s, s);
}

/** A floor tile of room kind `kind` ("hall" outside rooms); `variant` 0..3 varies the pattern. */
export function floorSprite(kind, size, variant = 0) {
  const v = variant & 3;
  return cached(`floor|${kind}|${size}|${v}`, size, size, (c, s) => {
    if (kind === "open") drawPlanks(c, s, v);
    else if (kind === "meeting") drawCarpet(c, s, FLOOR_COLORS.meeting, "rgba(40, 70, 130, 0.18)", v);
    else if (kind === "private") drawCarpet(c, s, FLOOR_COLORS.private, "rgba(90, 50, 140, 0.16)", v);
    else drawHallTile(c, s, v);
  });
}

// --- walls and doors ---

/** A wall tile seen from above; `cap` on the top tile of a run (its edge catches the light), `face`
 * when the tile below is floor (the wall's front shows, with bricks). */
export function wallSprite(size, face, cap = true) {
  return cached(`wall|${size}|${face ? 1 : 0}|${cap ? 1 : 0}`, size, size, (c, s) => {
    c.fillStyle = "#465269";
    c.fillRect(0, 0, s, s);
    c.fillStyle = "rgba(0, 0, 0, 0.16)";
    c.fillRect(0, 0, Math.max(1, s / 16), s);
    c.fillRect(s - Math.max(1, s / 16), 0, Math.max(1, s / 16), s);
    const top = face ? Math.max(2, s * 0.34) : s;
    if (cap) {
      c.fillStyle = "rgba(255, 255, 255, 0.16)";
      c.fillRect(0, 0, s, Math.max(1, s / 12));
    }
    if (face) {
      c.fillStyle = "#7a6456";
      c.fillRect(0, top, s, s - top);
      c.strokeStyle = "rgba(40, 30, 25, 0.45)";
      c.lineWidth = Math.max(1, s / 40);
      const rows = 3;
      const rh = (s - top) / rows;
      c.beginPath();
      for (let r = 0; r < rows; r++) {
        const y = top + r * rh;
        c.moveTo(0, y);
        c.lineTo(s, y);
        const off = r % 2 ? s / 4 : s * 0.75;
        c.moveTo(off, y);
        c.lineTo(off, y + rh);
      }
      c.stroke();
      c.fillStyle = "rgba(0, 0, 0, 0.18)";
      c.fillRect(0, s - Math.max(1, s / 16), s, Math.max(1, s / 16));
    }
  });
}

/** A door tile: the frame's posts, a threshold and the open leaf; `horizontal` when walls are left and right. */
export function doorSprite(size, horizontal) {
  return cached(`door|${size}|${horizontal ? 1 : 0}`, size, size, (c, s) => {
    c.save();
    if (!horizontal) {
      c.translate(s, 0);
      c.rotate(Math.PI / 2);
    }
    const post = Math.max(2, s * 0.14);
    c.fillStyle = "#c8a46e";
    c.fillRect(post, s * 0.4, s - 2 * post, s * 0.2);
    c.fillStyle = "#8a6a43";
    c.fillRect(0, 0, post, s);
    c.fillRect(s - post, 0, post, s);
    // the open leaf and its swing
    c.strokeStyle = "rgba(138, 106, 67, 0.45)";
    c.lineWidth = Math.max(1, s / 32);
    c.setLineDash([Math.max(2, s / 10), Math.max(2, s / 12)]);
    c.beginPath();
    c.arc(post, s * 0.5, s - 2 * post, -Math.PI / 2, 0);
    c.stroke();
    c.setLineDash([]);
    c.fillStyle = "#a57c4d";
    c.fillRect(post, s * 0.5 - (s - 2 * post), Math.max(2, s * 0.08), s - 2 * post);
    c.restore();
  });
}

// --- furniture ---

/** A desk seen from above: top, monitor, keyboard, mug, and a chair in front. */
export function deskSprite(size) {
  return cached(`desk|${size}`, size, size, (c, s) => {
    // chair
    c.fillStyle = "#334155";
    roundRect(c, s * 0.3, s * 0.68, s * 0.4, s * 0.28, s * 0.08);
    c.fill();
    // shadow and top
    c.fillStyle = "rgba(15, 23, 42, 0.18)";
    roundRect(c, s * 0.06, s * 0.12, s * 0.92, s * 0.58, s * 0.08);
    c.fill();
    c.fillStyle = "#b98b5e";
    roundRect(c, s * 0.03, s * 0.06, s * 0.92, s * 0.58, s * 0.08);
    c.fill();
    c.fillStyle = "rgba(255, 255, 255, 0.18)";
    c.fillRect(s * 0.06, s * 0.09, s * 0.86, Math.max(1, s * 0.04));
    // monitor
    c.fillStyle = "#1f2937";
    c.fillRect(s * 0.26, s * 0.13, s * 0.46, s * 0.2);
    c.fillStyle = "#60a5fa";
    c.fillRect(s * 0.29, s * 0.155, s * 0.40, s * 0.14);
    c.fillStyle = "#1f2937";
    c.fillRect(s * 0.46, s * 0.33, s * 0.06, s * 0.07);
    // keyboard
    c.fillStyle = "#e5e7eb";
    c.fillRect(s * 0.3, s * 0.44, s * 0.36, s * 0.1);
    // mug
    c.fillStyle = "#f8fafc";
    c.beginPath();
    c.arc(s * 0.82, s * 0.45, s * 0.06, 0, Math.PI * 2);
    c.fill();
  });
}

/** A potted plant. */
export function plantSprite(size) {
  return cached(`plant|${size}`, size, size, (c, s) => {
    c.fillStyle = "rgba(15, 23, 42, 0.18)";
    c.beginPath();
    c.ellipse(s * 0.5, s * 0.8, s * 0.3, s * 0.1, 0, 0, Math.PI * 2);
    c.fill();
    c.fillStyle = "#b45309";
    roundRect(c, s * 0.32, s * 0.52, s * 0.36, s * 0.3, s * 0.06);
    c.fill();
    const leaves = [[0.5, 0.3, 0.2], [0.33, 0.4, 0.15], [0.67, 0.4, 0.15], [0.42, 0.2, 0.12], [0.6, 0.22, 0.12]];
    for (const [i, [lx, ly, lr]] of leaves.entries()) {
      c.fillStyle = i % 2 ? "#15803d" : "#22a04b";
      c.beginPath();
      c.arc(s * lx, s * ly, s * lr, 0, Math.PI * 2);
      c.fill();
    }
  });
}

/** A bookshelf against a wall (seen from above: a row of coloured spines). */
export function shelfSprite(size) {
  return cached(`shelf|${size}`, size, size, (c, s) => {
    c.fillStyle = "#7c5a3a";
    c.fillRect(0, 0, s, s * 0.45);
    const colors = ["#dc2626", "#2563eb", "#16a34a", "#ca8a04", "#7c3aed"];
    const n = 5;
    for (let i = 0; i < n; i++) {
      c.fillStyle = colors[i % colors.length];
      c.fillRect(s * (0.06 + i * 0.18), s * 0.06, s * 0.13, s * 0.32);
    }
  });
}

/** A meeting table of w x h tiles with chairs around it, drawn straight onto `c` at (x, y) in px. */
export function drawMeetingTable(c, x, y, w, h, tile) {
  const chairs = [];
  for (let i = 0; i < Math.max(1, Math.floor(w / tile)); i++) {
    const cx = x + (i + 0.5) * tile;
    chairs.push([cx, y - tile * 0.22], [cx, y + h + tile * 0.22]);
  }
  c.fillStyle = "#475569";
  for (const [cx, cy] of chairs) {
    c.beginPath();
    c.arc(cx, cy, tile * 0.2, 0, Math.PI * 2);
    c.fill();
  }
  c.fillStyle = "rgba(15, 23, 42, 0.18)";
  roundRect(c, x + tile * 0.06, y + tile * 0.08, w, h, tile * 0.3);
  c.fill();
  c.fillStyle = "#8b5e3c";
  roundRect(c, x, y, w, h, tile * 0.3);
  c.fill();
  c.fillStyle = "rgba(255, 255, 255, 0.14)";
  roundRect(c, x + tile * 0.12, y + tile * 0.1, w - tile * 0.24, Math.max(2, tile * 0.12), tile * 0.06);
  c.fill();
}

/** A rug under a sofa corner (private rooms). */
export function drawLounge(c, x, y, tile) {
  c.fillStyle = "rgba(124, 58, 237, 0.16)";
  roundRect(c, x, y, tile * 2, tile * 1.4, tile * 0.2);
  c.fill();
  c.fillStyle = "#6d28d9";
  roundRect(c, x + tile * 0.1, y + tile * 0.08, tile * 1.8, tile * 0.42, tile * 0.14);
  c.fill();
  c.fillStyle = "#8b5cf6";
  roundRect(c, x + tile * 0.16, y + tile * 0.3, tile * 0.8, tile * 0.5, tile * 0.12);
  c.fill();
  roundRect(c, x + tile * 1.04, y + tile * 0.3, tile * 0.8, tile * 0.5, tile * 0.12);
  c.fill();
}

// --- avatars ---

// The member statuses (rooms.models.Profile.Status): the ring around an avatar.
export const STATUS_RING = { available: "#16a34a", busy: "#dc2626", away: "#94a3b8" };

/**
 * An avatar: a disc of the person's colour with initials and a white rim, the status ring around it
 * (busy adds a "no entry" bar, away dashes the ring: not only colour tells them apart) and a shadow.
 * `d` is the disc's diameter in device pixels; the sprite has `pad` pixels around it for the ring.
 * Cached per colour, initials, status and size, so drawing a crowd is copying bitmaps.
 */
export function avatarSprite(color, name, status, d) {
  const safe = safeColor(color);
  const initials = initialsOf(name);
  const ringStatus = STATUS_RING[status] ? status : "available";
  const ring = Math.max(2, d * 0.11);
  const pad = Math.ceil(ring + 2);
  const size = d + 2 * pad;
  const sprite = cached(`avatar|${safe}|${initials}|${ringStatus}|${d}`, size, size + Math.ceil(d * 0.2), (c) => {
    const r = d / 2;
    const cx = pad + r;
    const cy = pad + r;
    c.fillStyle = "rgba(15, 23, 42, 0.22)";
    c.beginPath();
    c.ellipse(cx, cy + d * 0.58, r * 0.72, r * 0.22, 0, 0, Math.PI * 2);
    c.fill();
    c.fillStyle = safe;
    c.beginPath();
    c.arc(cx, cy, r - Math.max(1, d / 16), 0, Math.PI * 2);
    c.fill();
    c.lineWidth = Math.max(1.5, d / 14);
    c.strokeStyle = "#ffffff";
    c.stroke();
    c.fillStyle = "#ffffff";
    c.font = `700 ${Math.round(d * 0.36)}px system-ui, sans-serif`;
    c.textAlign = "center";
    c.textBaseline = "middle";
    c.fillText(initials, cx, cy + d * 0.02);
    c.strokeStyle = STATUS_RING[ringStatus];
    c.lineWidth = ring;
    if (ringStatus === "away") c.setLineDash([d * 0.14, d * 0.1]);
    c.beginPath();
    c.arc(cx, cy, r + ring / 2, 0, Math.PI * 2);
    c.stroke();
    c.setLineDash([]);
    if (ringStatus === "busy") {
      const br = Math.max(4, d * 0.17);
      const bx = cx + r * 0.78;
      const by = cy - r * 0.78;
      c.fillStyle = "#ffffff";
      c.beginPath();
      c.arc(bx, by, br + 1.5, 0, Math.PI * 2);
      c.fill();
      c.fillStyle = STATUS_RING.busy;
      c.beginPath();
      c.arc(bx, by, br, 0, Math.PI * 2);
      c.fill();
      c.fillStyle = "#ffffff";
      c.fillRect(bx - br * 0.6, by - br * 0.18, br * 1.2, br * 0.36);
    }
  });
  return { canvas: sprite, pad };
}

const LABEL_STYLE = {
  me: { fill: "rgba(49, 46, 129, 0.92)", text: "#ffffff", pill: true },
  person: { fill: "rgba(255, 255, 255, 0.94)", text: "#1f2937", pill: true },
  desk: { fill: "rgba(255, 255, 255, 0.72)", text: "#5b6476", pill: false },
};

/** A label (a name on a pill, a desk's name on a plate) w x h CSS px at `dpr`, cached per text and look. */
export function labelSprite(text, font, kind, w, h, dpr) {
  const style = LABEL_STYLE[kind] || LABEL_STYLE.person;
  const pw = Math.ceil(w * dpr);
  const ph = Math.ceil(h * dpr);
  return cached(`label|${kind}|${font}|${text}|${pw}x${ph}`, pw, ph, (c) => {
    c.scale(dpr, dpr);
    c.fillStyle = style.fill;
    roundRect(c, 0, 0, w, h, style.pill ? h / 2 : 4);
    c.fill();
    c.fillStyle = style.text;
    c.font = font;
    c.textAlign = "center";
    c.textBaseline = "middle";
    c.fillText(text, w / 2, h / 2 + 0.5);
  });
}

/** How many sprites are cached (tests and debugging). */
export function spriteCacheSize() {
  return cache.size;
}

export function roundRect(c, x, y, w, h, r) {
  const rr = Math.max(0, Math.min(r, w / 2, h / 2));
  c.beginPath();
  c.moveTo(x + rr, y);
  c.arcTo(x + w, y, x + w, y + h, rr);
  c.arcTo(x + w, y + h, x, y + h, rr);
  c.arcTo(x, y + h, x, y, rr);
  c.arcTo(x, y, x + w, y, rr);
  c.closePath();
}
