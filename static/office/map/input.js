// Movement input on the map: arrow and WASD keys (single taps queued, held keys repeat), click or tap
// to walk there, and the hovered tile. It drives a MapView through step/walkTo/movementTick.

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
      if (e.button !== 0) return;
      const tile = view.tileAt(e);
      if (!tile) return;
      canvas.focus({ preventScroll: true });
      if (!view.canMove()) return;
      view.walkTo(tile[0], tile[1]);
    });
    canvas.addEventListener("pointermove", (e) => {
      view.hover = view.tileAt(e);
    });
    canvas.addEventListener("pointerleave", () => {
      view.hover = null;
    });
  }
}
