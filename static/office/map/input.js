// Movement input on the map: arrow and WASD keys (single taps queued, held keys repeat), click or tap
// to walk there, the hovered tile; on touch screens a drag pans and two fingers zoom, and the wheel
// zooms. It drives a MapView through step/walkTo/movementTick and its renderer's zoom and pan.

const ZOOM_KEYS = { "+": 1.25, "=": 1.25, "-": 0.8 }; // with the map focused
const TAP_SLOP_PX = 10; // a touch that moves farther is a drag, not a tap
const TAP_MAX_MS = 600;

const KEY_DIRS = {
  ArrowUp: [0, -1], ArrowDown: [0, 1], ArrowLeft: [-1, 0], ArrowRight: [1, 0],
  KeyW: [0, -1], KeyS: [0, 1], KeyA: [-1, 0], KeyD: [1, 0],
  w: [0, -1], s: [0, 1], a: [-1, 0], d: [1, 0], W: [0, -1], S: [0, 1], A: [-1, 0], D: [1, 0],
};

/** Whether typing in `el` should keep the movement keys (inputs, text areas, editable content). */
export function isTextEntry(el) {
  if (!el) return false;
  if (el.isContentEditable) return true;
  const tag = el.tagName;
  if (tag === "TEXTAREA" || tag === "SELECT") return true;
  if (tag !== "INPUT") return false;
  const type = (el.type || "text").toLowerCase();
  return !["button", "submit", "reset", "checkbox", "radio", "range", "color", "file", "image"].includes(type);
}

export class MapInput {
  constructor(view) {
    this.view = view;
    this.held = []; // held direction keys, most recent last
    this.taps = []; // queued single steps
    this.touches = new Map(); // pointer id -> {x, y, x0, y0, t0} for fingers on the canvas
    this.gesture = null; // "tap" | "drag" | "pinch" while fingers are down
    this.pinch = null; // {dist0, zoom0}
    this._bind();
  }

  clearTaps() {
    this.taps = [];
  }

  /** The next keyboard step [dx, dy]: a queued tap first, else the held keys; null when none. */
  nextStep() {
    if (this.taps.length) return this.taps.shift();
    return this._heldDir();
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

  _bind() {
    const view = this.view;
    const canvas = view.canvas;
    window.addEventListener("keydown", (e) => {
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      if (ZOOM_KEYS[e.key] && !isTextEntry(e.target) && !isTextEntry(document.activeElement)
          && document.activeElement === canvas) {
        e.preventDefault();
        view.renderer.setZoom(view.renderer.zoom * ZOOM_KEYS[e.key]);
        return;
      }
      const key = KEY_DIRS[e.code] ? e.code : (KEY_DIRS[e.key] ? e.key : null);
      if (!key || isTextEntry(e.target) || isTextEntry(document.activeElement)) return;
      // Arrow keys inside a list widget (the conversation list) navigate the list instead.
      if (key.startsWith("Arrow") && e.target && e.target.closest && e.target.closest("[role=listbox]")) return;
      e.preventDefault();
      view.stopWalking();
      const canonical = e.code && KEY_DIRS[e.code] ? e.code : key;
      if (!e.repeat) {
        if (this.taps.length < 4) this.taps.push(KEY_DIRS[canonical]);
      }
      if (!this.held.includes(canonical)) this.held.push(canonical);
      view.movementTick();
    });
    window.addEventListener("keyup", (e) => {
      const key = KEY_DIRS[e.code] ? e.code : e.key;
      this.held = this.held.filter((k) => k !== key && k !== e.key && k !== e.code);
    });
    window.addEventListener("blur", () => {
      this.held = [];
    });
    canvas.addEventListener("pointerdown", (e) => {
      if (e.pointerType === "touch") {
        this._touchDown(e);
        return;
      }
      if (e.button !== 0) return;
      const tile = view.tileAt(e);
      if (!tile) return;
      canvas.focus({ preventScroll: true });
      if (!view.canMove()) return;
      view.walkTo(tile[0], tile[1]);
    });
    canvas.addEventListener("pointermove", (e) => {
      if (e.pointerType === "touch") {
        this._touchMove(e);
        return;
      }
      view.hover = view.tileAt(e);
    });
    canvas.addEventListener("pointerup", (e) => {
      if (e.pointerType === "touch") this._touchUp(e, true);
    });
    canvas.addEventListener("pointercancel", (e) => {
      if (e.pointerType === "touch") this._touchUp(e, false);
    });
    canvas.addEventListener("pointerleave", () => {
      view.hover = null;
    });
    canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      const rect = canvas.getBoundingClientRect();
      const factor = Math.exp(-Math.max(-100, Math.min(100, e.deltaY)) * (e.ctrlKey ? 0.01 : 0.002));
      view.renderer.setZoom(view.renderer.zoom * factor, e.clientX - rect.left, e.clientY - rect.top);
    }, { passive: false });
  }

  // --- touch: tap to walk, drag to pan, pinch to zoom ---

  _touchDown(e) {
    const now = performance.now();
    this.touches.set(e.pointerId, { x: e.clientX, y: e.clientY, x0: e.clientX, y0: e.clientY, t0: now });
    if (this.touches.size === 1) {
      this.gesture = "tap";
    } else if (this.touches.size === 2) {
      const [a, b] = [...this.touches.values()];
      this.gesture = "pinch";
      this.pinch = { dist0: Math.max(1, Math.hypot(a.x - b.x, a.y - b.y)), zoom0: this.view.renderer.zoom };
    }
  }

  _touchMove(e) {
    const t = this.touches.get(e.pointerId);
    if (!t) return;
    const renderer = this.view.renderer;
    const dx = e.clientX - t.x;
    const dy = e.clientY - t.y;
    t.x = e.clientX;
    t.y = e.clientY;
    if (this.gesture === "pinch" && this.touches.size >= 2) {
      const [a, b] = [...this.touches.values()];
      const rect = this.view.canvas.getBoundingClientRect();
      const dist = Math.max(1, Math.hypot(a.x - b.x, a.y - b.y));
      renderer.setZoom(this.pinch.zoom0 * (dist / this.pinch.dist0), (a.x + b.x) / 2 - rect.left, (a.y + b.y) / 2 - rect.top);
      return;
    }
    if (this.gesture === "tap" && Math.hypot(t.x - t.x0, t.y - t.y0) > TAP_SLOP_PX) this.gesture = "drag";
    if (this.gesture === "drag") {
      const tile = renderer.tile;
      const cx = renderer.cam.x + renderer.cssW / tile / 2;
      const cy = renderer.cam.y + renderer.cssH / tile / 2;
      const base = renderer.pan || { x: cx, y: cy };
      renderer.panTo(base.x - dx / tile, base.y - dy / tile);
    }
  }

  _touchUp(e, lifted) {
    const t = this.touches.get(e.pointerId);
    this.touches.delete(e.pointerId);
    if (!t) return;
    const wasTap = lifted && this.gesture === "tap" && performance.now() - t.t0 < TAP_MAX_MS;
    if (!this.touches.size) {
      this.gesture = null;
      this.pinch = null;
    }
    if (!wasTap) return;
    const view = this.view;
    view.canvas.focus({ preventScroll: true });
    const tile = view.tileAt(e);
    if (!tile || !view.canMove()) return;
    view.renderer.follow();
    view.walkTo(tile[0], tile[1]);
  }
}
