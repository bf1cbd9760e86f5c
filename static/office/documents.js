// The documents of the room I stand in, in the assistant panel: add files (drop them, or choose
// several), a progress line per file as the server stores, reads (OCR page k of N), indexes them and
// says "ready" (or why not), and delete my own. Progress comes as `document.progress` frames; the
// list is reloaded from REST whenever I enter a room (frames missed while away are not needed).

import { el } from "./lib/dom.js";
import { apiRequest, csrfToken, jsonResult } from "./lib/http.js";

const ACCEPT = ".txt,.md,.pdf";

/** The progress line of a document as stored on the server. */
export function progressText(doc) {
  switch (doc.stage) {
    case "stored":
      return "Stored; waiting to be read";
    case "extracting":
      return doc.pages_total ? `Reading the text (${doc.pages_total} pages)` : "Reading the text";
    case "ocr":
      return `Reading scanned page ${Math.min(doc.pages_done + 1, doc.pages_total)} of ${doc.pages_total}`;
    case "indexing":
      return "Text extracted; indexing";
    case "ready":
      return doc.error ? `Ready — ${doc.error}` : `Ready · ${doc.page_count} page${doc.page_count === 1 ? "" : "s"}`;
    case "failed":
      return `Failed — ${doc.error || "the file could not be read"}`;
    default:
      return doc.stage;
  }
}

export class RoomDocuments {
  constructor({ socket, state, notice }) {
    this.socket = socket;
    this.state = state;
    this.notice = notice || (() => {});
    this.roomId = null;
    this.docs = new Map(); // id -> document payload
    this.uploads = new Map(); // local key -> {name, line} while uploading
    this.loadGen = 0;

    this.section = document.getElementById("room-documents");
    this.list = document.getElementById("room-documents-list");
    this.input = document.getElementById("room-documents-input");
    this.drop = document.getElementById("room-documents-drop");
    this.count = document.getElementById("room-documents-count");
    this._bind();
  }

  _bind() {
    this.socket.on("document.progress", (f) => {
      if (f.document.room !== this.roomId) return;
      this.docs.set(f.document.id, f.document);
      this.render();
    });
    this.socket.on("document.deleted", (f) => {
      if (this.docs.delete(f.document)) this.render();
    });
    this.input.addEventListener("change", () => {
      this.addFiles([...this.input.files]);
      this.input.value = "";
    });
    for (const type of ["dragenter", "dragover"]) {
      this.drop.addEventListener(type, (e) => {
        e.preventDefault();
        this.drop.dataset.over = "true";
      });
    }
    for (const type of ["dragleave", "drop"]) {
      this.drop.addEventListener(type, () => delete this.drop.dataset.over);
    }
    this.drop.addEventListener("drop", (e) => {
      e.preventDefault();
      this.addFiles([...(e.dataTransfer ? e.dataTransfer.files : [])]);
    });
  }

  /** Called when I walk into another room (or the hallway): that room's documents. */
  async onRoomChanged(roomId) {
    this.roomId = roomId;
    this.docs.clear();
    this.uploads.clear();
    this.section.hidden = roomId == null;
    this.render();
    if (roomId == null) return;
    const gen = ++this.loadGen;
    const res = await apiRequest(`/api/rooms/${roomId}/documents/`);
    if (gen !== this.loadGen) return; // walked on meanwhile
    if (res.status === 404) {
      this.section.hidden = true; // a guest let into a private room: its records stay its members' (ADR 0022)
      return;
    }
    if (!res.ok) {
      this.notice(res.message, "error");
      return;
    }
    for (const doc of res.data) if (!this.docs.has(doc.id)) this.docs.set(doc.id, doc);
    this.render();
  }

  addFiles(files) {
    for (const file of files) this.upload(file);
  }

  /** POST one file with an upload percentage; the server's progress frames take over once it is stored. */
  upload(file) {
    if (this.roomId == null) return;
    const key = `${Date.now()}-${Math.random()}`;
    const entry = { name: file.name, line: "Uploading…", failed: false };
    this.uploads.set(key, entry);
    this.render();
    const form = new FormData();
    form.append("file", file);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/rooms/${this.roomId}/documents/`);
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      entry.line = `Uploading ${Math.round((100 * e.loaded) / e.total)} %`;
      this.render();
    });
    xhr.addEventListener("load", async () => {
      const res = await jsonResult(new Response(xhr.responseText, { status: xhr.status }));
      if (res.ok) {
        this.uploads.delete(key);
        if (!this.docs.has(res.data.id) || res.status === 201) this.docs.set(res.data.id, res.data);
        if (res.status === 200) this.notice(`${file.name} is already in this room.`, "info");
      } else {
        entry.failed = true;
        entry.line = `Not added — ${res.message}`;
      }
      this.render();
    });
    xhr.addEventListener("error", () => {
      entry.failed = true;
      entry.line = "Not added — not connected; try again.";
      this.render();
    });
    xhr.send(form);
  }

  async remove(doc) {
    if (!window.confirm(`Delete “${doc.title}” and what the assistant learnt from it?`)) return;
    const res = await apiRequest(`/api/documents/${doc.id}/`, { method: "DELETE" });
    if (!res.ok && res.status !== 404) {
      this.notice(res.message, "error");
      return;
    }
    this.docs.delete(doc.id);
    this.render();
  }

  render() {
    const rows = [];
    for (const [key, upload] of this.uploads) {
      const li = el("li", { class: "doc-row", "data-upload": key, "data-state": upload.failed ? "failed" : "uploading" });
      li.append(el("span", "doc-title", upload.name), el("span", "doc-progress", upload.line));
      rows.push(li);
    }
    const docs = [...this.docs.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
    for (const doc of docs) {
      const li = el("li", { class: "doc-row", "data-document": String(doc.id), "data-stage": doc.stage });
      const title = el("a", { class: "doc-title", href: doc.url, target: "_blank", rel: "noopener" }, doc.title);
      li.append(title, el("span", { class: "doc-progress", role: "status" }, progressText(doc)));
      const me = this.state.me || {};
      if (me.id === (doc.uploaded_by && doc.uploaded_by.id) || me.role === "admin") {
        const del = el("button", { type: "button", class: "btn btn-ghost btn-small doc-delete",
                                   "aria-label": `Delete ${doc.title}` }, "Delete");
        del.addEventListener("click", () => this.remove(doc));
        li.append(del);
      }
      rows.push(li);
    }
    this.list.replaceChildren(...rows);
    this.count.textContent = docs.length ? String(docs.length) : "";
  }
}

export { ACCEPT };
