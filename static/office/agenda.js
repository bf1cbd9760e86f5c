// The Agenda panel (beside the Meeting panel): the agenda of the booked meeting going on now, or next,
// in the room I stand in. The office drafts it from the room's open action items, the last meeting's
// open questions and the documents added since, and posts it to the room's chat shortly before the
// meeting (docs/adr/0021). Participants edit it here (reword, add, remove, reorder) and save the whole
// list with the version they started from; a 409 means someone saved first, and their version is shown.
// Everyone in the room hears of a saved change as an `agenda.changed` frame.

import { el, link } from "./lib/dom.js";
import { formatTime } from "./lib/format.js";
import { apiRequest } from "./lib/http.js";

const MAX_ITEMS = 50;
const KIND_LABEL = { action_item: "Action", question: "Question", document: "Document", custom: "Item" };

export class AgendaPanel {
  constructor({ socket, state, notice }) {
    this.socket = socket;
    this.state = state;
    this.notice = notice || (() => {});
    this.roomId = null;
    this.agenda = null; // the saved agenda, as the server last said
    this.canEdit = false;
    this.items = []; // what the list shows: the saved items, or my edits of them
    this.dirty = false;
    this.newer = null; // a change someone saved while I had unsaved edits
    this.saving = false;
    this.loadGen = 0;

    this.panel = document.getElementById("agenda-panel");
    this.titleEl = document.getElementById("agenda-title");
    this.whenEl = document.getElementById("agenda-when");
    this.listEl = document.getElementById("agenda-items");
    this.emptyEl = document.getElementById("agenda-empty");
    this.addForm = document.getElementById("agenda-add-form");
    this.addInput = document.getElementById("agenda-add-input");
    this.actionsEl = document.getElementById("agenda-actions");
    this.statusEl = document.getElementById("agenda-status");
    this.saveBtn = document.getElementById("agenda-save");
    this.resetBtn = document.getElementById("agenda-reset");
    if (!this.panel) return;
    this._bind();
    this.render();
  }

  _bind() {
    // After a (re)connect: main.js sets my room in its own hello handler, which runs after this one.
    this.socket.on("hello", () => setTimeout(() => this.onRoomChanged(this.state.you.room), 0));
    this.socket.on("agenda.changed", (f) => this.onChanged(f.agenda));
    this.addForm.addEventListener("submit", (e) => {
      e.preventDefault();
      const text = this.addInput.value.trim();
      if (!text) return;
      if (this.items.length >= MAX_ITEMS) {
        this.notice(`An agenda has at most ${MAX_ITEMS} items`, "warn");
        return;
      }
      this.items.push({ kind: "custom", text, ref: null, url: "" });
      this.addInput.value = "";
      this._edited();
    });
    this.saveBtn.addEventListener("click", () => this.save());
    this.resetBtn.addEventListener("click", () => this._show(this.newer || this.agenda, this.canEdit));
  }

  /** Called when I walk into another room (or the hallway), and after a reconnect. */
  async onRoomChanged(roomId) {
    if (!this.panel) return;
    if (roomId === this.roomId && this.agenda && this.dirty) return; // my edits stay while I stay
    this.roomId = roomId;
    const gen = ++this.loadGen;
    if (roomId == null) {
      this._show(null, false);
      return;
    }
    const res = await apiRequest(`/api/rooms/${roomId}/agenda/`);
    if (gen !== this.loadGen) return;
    if (!res.ok) {
      this._show(null, false);
      return;
    }
    const agenda = res.data && res.data.agenda;
    this._show(agenda || null, !!(agenda && agenda.can_edit));
  }

  onChanged(agenda) {
    if (!agenda || agenda.room !== this.roomId) return;
    const same = this.agenda && this.agenda.id === agenda.id;
    if (same && agenda.version <= this.agenda.version) return;
    if (!same) {
      // A newly drafted agenda: REST says which one is the room's upcoming one and whether I may edit it.
      if (!this.dirty) this.onRoomChanged(this.roomId);
      return;
    }
    if (this.dirty) {
      this.newer = agenda; // do not throw away what I am typing; say so, and let me choose
      this._status(`${agenda.edited_by ? agenda.edited_by.name : "Someone"} saved a newer version.`, "warn");
      this.resetBtn.hidden = false;
      this.resetBtn.textContent = "Show theirs";
      return;
    }
    this._show(agenda, this.canEdit);
  }

  _show(agenda, canEdit) {
    this.agenda = agenda;
    this.canEdit = !!canEdit;
    this.items = agenda ? agenda.items.map((i) => ({ ...i })) : [];
    this.dirty = false;
    this.newer = null;
    this._status("");
    this.render();
  }

  _edited() {
    this.dirty = true;
    this._status("Unsaved changes");
    this.render();
  }

  _status(text, kind = "") {
    this.statusEl.textContent = text;
    this.statusEl.dataset.kind = kind;
  }

  async save() {
    if (!this.agenda || !this.dirty || this.saving) return;
    const items = this.items.map((i) => ({ ...i, text: String(i.text || "").trim() })).filter((i) => i.text);
    this.saving = true;
    this.render();
    const res = await apiRequest(`/api/agendas/${this.agenda.id}/`, {
      method: "PUT",
      body: { version: this.agenda.version, items },
    });
    this.saving = false;
    if (res.ok) {
      this._show(res.data, res.data.can_edit);
      this._status("Saved");
    } else if (res.status === 409) {
      this.notice("Someone saved the agenda before you: showing their version. Make your change again.", "warn", 8000);
      this.dirty = false;
      await this.onRoomChanged(this.roomId);
    } else {
      this._status(res.message, "error");
      this.render();
    }
  }

  // --- rendering ---

  render() {
    const a = this.agenda;
    this.panel.hidden = !a;
    if (!a) return;
    this.panel.dataset.agenda = String(a.id);
    this.panel.dataset.version = String(a.version);
    this.titleEl.textContent = a.title;
    this.whenEl.textContent = `${formatTime(a.starts_at)}–${formatTime(a.ends_at)}`;
    this.whenEl.title = a.edited_by ? `Last edited by ${a.edited_by.name}` : "Drafted by the office";
    const frag = document.createDocumentFragment();
    this.items.forEach((item, index) => frag.append(this._row(item, index)));
    this.listEl.replaceChildren(frag);
    this.emptyEl.hidden = this.items.length > 0;
    this.addForm.hidden = !this.canEdit;
    this.actionsEl.hidden = !this.canEdit;
    this.saveBtn.disabled = !this.dirty || this.saving;
    this.saveBtn.textContent = this.saving ? "Saving…" : "Save agenda";
    this.resetBtn.hidden = !this.dirty;
    if (this.dirty && !this.newer) this.resetBtn.textContent = "Discard";
  }

  _row(item, index) {
    const li = el("li", "agenda-item");
    li.dataset.kind = item.kind;
    li.append(el("span", `agenda-kind agenda-kind-${item.kind in KIND_LABEL ? item.kind : "custom"}`,
      KIND_LABEL[item.kind] || "Item"));
    if (!this.canEdit) {
      li.append(item.url ? link(item.url, item.text, "agenda-text") : el("span", "agenda-text", item.text));
      return li;
    }
    const input = el("input", { type: "text", class: "agenda-text-input", maxlength: "500",
      "aria-label": `Agenda item ${index + 1}` });
    input.value = item.text;
    input.addEventListener("input", () => {
      item.text = input.value;
      if (!this.dirty) this._edited();
    });
    li.append(input);
    if (item.url) {
      const open = link(item.url, "↗", "agenda-open");
      open.title = "Open";
      open.target = "_blank";
      open.rel = "noopener";
      li.append(open);
    }
    const tools = el("span", "agenda-tools");
    tools.append(
      this._tool("↑", `Move item ${index + 1} up`, index === 0, () => this._move(index, -1)),
      this._tool("↓", `Move item ${index + 1} down`, index === this.items.length - 1, () => this._move(index, 1)),
      this._tool("×", `Remove item ${index + 1}`, false, () => {
        this.items.splice(index, 1);
        this._edited();
      }),
    );
    li.append(tools);
    return li;
  }

  _tool(symbol, label, disabled, onClick) {
    const btn = el("button", { type: "button", class: "agenda-tool", "aria-label": label, title: label }, symbol);
    btn.disabled = disabled;
    btn.addEventListener("click", onClick);
    return btn;
  }

  _move(index, by) {
    const to = index + by;
    if (to < 0 || to >= this.items.length) return;
    const [item] = this.items.splice(index, 1);
    this.items.splice(to, 0, item);
    this._edited();
  }
}
