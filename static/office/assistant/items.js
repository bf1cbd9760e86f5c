// Proposed action items: the list with Approve / Edit / Reject, the inline edit form, and decisions
// sent to /api/action-items/<id>/decision/ (shared by the office panel and the meeting page).

import { el, link } from "../lib/dom.js";
import { formatDateTime, formatDay } from "../lib/format.js";
import { apiRequest } from "../lib/http.js";

const STATUS_WORD = { approved: "Approved", rejected: "Rejected", proposed: "Proposed" };

/**
 * A list of action items with Approve / Edit / Reject. Decisions go to the REST endpoint; the reply
 * (or a live `assistant.action_item` frame) re-renders the item. A 409 means someone else decided
 * first: the list is reloaded through `reload`.
 */
export class ActionItemList {
  constructor({ listEl, countEl = null, members = () => [], segmentHref, meetingHref = null, reload = async () => {},
    onFailure = () => {}, announce = () => {}, emptyText = "No action items proposed yet." }) {
    this.listEl = listEl;
    this.countEl = countEl;
    this.members = members;
    this.segmentHref = segmentHref;
    this.meetingHref = meetingHref;
    this.reload = reload;
    this.onFailure = onFailure;
    this.announce = announce;
    this.emptyText = emptyText;
    this.items = new Map(); // id -> payload
    this.editing = null; // id of the item whose form is open
    this.errors = new Map(); // id -> message shown under the item
    this.busy = new Set();
    this.render();
  }

  clear() {
    this.items.clear();
    this.errors.clear();
    this.editing = null;
    this.render();
  }

  setAll(items) {
    const fresh = new Map((items || []).map((i) => [i.id, i]));
    if (this.editing != null && !(fresh.get(this.editing) && fresh.get(this.editing).status === "proposed")) this.editing = null;
    this.items = fresh;
    this.render();
  }

  /** Add or replace one item; returns true when it was not known before. */
  upsert(item) {
    if (!item || item.id == null) return false;
    const isNew = !this.items.has(item.id);
    const before = this.items.get(item.id);
    this.items.set(item.id, item);
    if (this.editing === item.id && item.status !== "proposed") {
      this.editing = null;
      const who = item.decided_by ? item.decided_by.name : "Someone";
      this.errors.set(item.id, `${who} already ${item.status === "approved" ? "approved" : "rejected"} this item.`);
    }
    if (this.editing === item.id) {
      // Keep the open form (what is being typed); the rest of the item follows on close.
      this._updateCount();
      return isNew;
    }
    if (!before || JSON.stringify(before) !== JSON.stringify(item)) this._replace(item);
    return isNew;
  }

  get ordered() {
    const rank = { proposed: 0, approved: 1, rejected: 2 };
    return [...this.items.values()].sort((a, b) => (rank[a.status] ?? 3) - (rank[b.status] ?? 3) ||
      String(a.created_at).localeCompare(String(b.created_at)) || a.id - b.id);
  }

  render() {
    const frag = document.createDocumentFragment();
    for (const item of this.ordered) frag.append(this._node(item));
    this.listEl.replaceChildren(frag);
    if (!this.items.size) this.listEl.append(el("li", "action-items-empty", this.emptyText));
    this._updateCount();
  }

  _updateCount() {
    if (!this.countEl) return;
    const open = [...this.items.values()].filter((i) => i.status === "proposed").length;
    this.countEl.textContent = open ? String(open) : "";
    this.countEl.title = open ? `${open} waiting for a decision` : "";
  }

  _replace(item, focus = false) {
    const old = this.listEl.querySelector(`li.action-item[data-item-id="${Number(item.id)}"]`);
    if (!old) {
      this.render(); // new items take their place in the order
    } else {
      const node = this._node(item);
      old.replaceWith(node);
      if (focus) node.focus();
    }
    this._updateCount();
  }

  _node(item) {
    const li = el("li", "action-item");
    li.dataset.itemId = String(item.id);
    li.dataset.status = item.status;
    li.tabIndex = -1;
    li.append(el("p", "ai-text", item.text));

    const meta = el("div", "ai-meta");
    if (item.owner) {
      meta.append(el("span", "ai-owner", `Owner: ${item.owner.name}`));
    } else {
      const owner = el("span", "ai-owner ai-unassigned", "Unassigned");
      meta.append(owner);
      if (item.suggested_owner) {
        const hint = el("span", "ai-suggested", `suggested: ${item.suggested_owner.name}`);
        if (item.owner_reason) hint.title = item.owner_reason;
        meta.append(hint);
      }
    }
    if (item.due_date) {
      meta.append(el("span", "ai-due", `Due ${formatDay(item.due_date)}${item.due_text ? ` (“${item.due_text}”)` : ""}`));
    } else if (item.due_text) {
      meta.append(el("span", "ai-due", `Due: “${item.due_text}”`));
    }
    if (typeof item.confidence === "number") {
      const conf = el("span", "ai-confidence", `${Math.round(item.confidence * 100)}% sure`);
      conf.dataset.level = item.confidence >= 0.75 ? "high" : item.confidence >= 0.5 ? "medium" : "low";
      meta.append(conf);
    }
    li.append(meta);
    if (!item.owner && item.suggested_owner && item.owner_reason) li.append(el("p", "ai-reason", item.owner_reason));

    const prov = item.provenance || {};
    const source = el("div", "ai-provenance");
    source.append(document.createTextNode(prov.speaker ? `Said by ${prov.speaker.name}` : "From the transcript"));
    const seqs = Array.isArray(prov.segment_seqs) ? prov.segment_seqs : [];
    if (seqs.length && this.segmentHref) {
      source.append(document.createTextNode(" · "));
      seqs.forEach((seq, i) => {
        if (i) source.append(document.createTextNode(" "));
        const a = link(this.segmentHref(item, seq), `#${seq}`, "ai-segment");
        a.setAttribute("aria-label", `Transcript line ${seq}`);
        source.append(a);
      });
    } else if (item.meeting != null && this.meetingHref) {
      source.append(document.createTextNode(" · "));
      source.append(link(this.meetingHref(item), "transcript", "ai-segment"));
    }
    if (prov.model_id) {
      const model = el("span", "ai-model", ` · ${prov.model_id}`);
      model.title = prov.prompt_version ? `prompt ${prov.prompt_version}` : "";
      source.append(model);
    }
    li.append(source);

    if (item.status === "proposed") {
      if (this.editing === item.id) li.append(this._form(item));
      else li.append(this._buttons(item));
    } else {
      const who = item.decided_by ? item.decided_by.name : "someone";
      const decided = el("p", "ai-decided", `${STATUS_WORD[item.status] || item.status} by ${who}`);
      if (item.decided_at) decided.title = formatDateTime(item.decided_at);
      li.append(decided);
    }
    const error = this.errors.get(item.id);
    const errEl = el("p", "ai-error", error || "");
    errEl.setAttribute("role", "alert");
    errEl.hidden = !error;
    li.append(errEl);
    return li;
  }

  _buttons(item) {
    const row = el("div", "ai-actions");
    const busy = this.busy.has(item.id);
    const make = (label, cls, onClick) => {
      const b = el("button", `btn btn-small ${cls}`, label);
      b.type = "button";
      b.disabled = busy;
      b.setAttribute("aria-label", `${label}: ${item.text}`);
      b.addEventListener("click", onClick);
      return b;
    };
    row.append(
      make("Approve", "btn-primary ai-approve", () => this.decide(item, { action: "approve" })),
      make("Edit", "btn-light ai-edit-open", () => this.openEdit(item.id)),
      make("Reject", "btn-light ai-reject", () => this.decide(item, { action: "reject" })),
    );
    return row;
  }

  _form(item) {
    const form = el("form", "ai-edit");
    form.noValidate = false;
    const uid = `ai-${item.id}`;
    const field = (labelText, input) => {
      const wrap = el("div", "ai-field");
      const label = el("label", null, labelText);
      label.htmlFor = input.id;
      wrap.append(label, input);
      return wrap;
    };
    const text = el("textarea", "ai-edit-text");
    text.id = `${uid}-text`;
    text.name = "text";
    text.rows = 2;
    text.maxLength = 500;
    text.required = true;
    text.value = item.text;
    const owner = el("select", "ai-edit-owner");
    owner.id = `${uid}-owner`;
    owner.name = "owner";
    const none = el("option", null, "Unassigned");
    none.value = "";
    owner.append(none);
    const members = [...(this.members() || [])].filter((m) => m && m.id != null)
      .sort((a, b) => String(a.name || a.username).localeCompare(String(b.name || b.username)));
    for (const m of members) {
      const opt = el("option", null, m.name || m.username);
      opt.value = String(m.id);
      owner.append(opt);
    }
    owner.value = item.owner ? String(item.owner.id) : "";
    if (item.owner && owner.value !== String(item.owner.id)) {
      const opt = el("option", null, item.owner.name);
      opt.value = String(item.owner.id);
      owner.append(opt);
      owner.value = opt.value;
    }
    const due = el("input", "ai-edit-due");
    due.type = "date";
    due.id = `${uid}-due`;
    due.name = "due_date";
    due.value = item.due_date || "";
    const save = el("button", "btn btn-primary btn-small ai-edit-save", "Save");
    save.type = "submit";
    const cancel = el("button", "btn btn-light btn-small ai-edit-cancel", "Cancel");
    cancel.type = "button";
    cancel.addEventListener("click", () => this.closeEdit(item.id));
    const row = el("div", "ai-actions");
    row.append(save, cancel);
    form.append(field("Action", text), field("Owner", owner), field("Due", due), row);
    form.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.preventDefault();
        this.closeEdit(item.id);
      }
    });
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const body = { action: "edit", text: text.value.trim(), owner: owner.value ? Number(owner.value) : null };
      if (due.value) body.due_date = due.value;
      if (!body.text) {
        this._error(item.id, "Write what needs doing.");
        return;
      }
      save.disabled = true;
      this.decide(this.items.get(item.id) || item, body, { fromForm: true }).finally(() => { save.disabled = false; });
    });
    return form;
  }

  openEdit(id) {
    this.editing = id;
    this.errors.delete(id);
    const item = this.items.get(id);
    if (!item) return;
    this._replace(item);
    const input = this.listEl.querySelector(`li.action-item[data-item-id="${Number(id)}"] .ai-edit-text`);
    if (input) input.focus();
  }

  closeEdit(id) {
    if (this.editing === id) this.editing = null;
    const item = this.items.get(id);
    if (!item) return;
    this._replace(item);
    const button = this.listEl.querySelector(`li.action-item[data-item-id="${Number(id)}"] .ai-edit-open`);
    if (button) button.focus();
  }

  _error(id, message) {
    this.errors.set(id, message);
    const errEl = this.listEl.querySelector(`li.action-item[data-item-id="${Number(id)}"] .ai-error`);
    if (errEl) {
      errEl.textContent = message;
      errEl.hidden = !message;
    }
  }

  /** POST a decision; the answer replaces the item. Returns true when it was taken. */
  async decide(item, body, { fromForm = false } = {}) {
    if (this.busy.has(item.id)) return false;
    this.busy.add(item.id);
    this.errors.delete(item.id);
    if (!fromForm) this._replace(item); // buttons disabled while it runs
    let r;
    try {
      r = await apiRequest(`/api/action-items/${Number(item.id)}/decision/`, { method: "POST", body });
    } finally {
      this.busy.delete(item.id);
    }
    if (r.ok && r.data) {
      if (this.editing === item.id) this.editing = null;
      this.items.set(r.data.id, r.data);
      this._replace(r.data, true);
      const word = body.action === "edit" ? "saved" : body.action === "approve" ? "approved" : "rejected";
      this.announce(`Action item ${word}: ${r.data.text}`);
      return true;
    }
    if (r.status === 409) {
      this.editing = null;
      this.errors.set(item.id, `${r.message}. Showing the latest version.`);
      await this.reload();
      this._replace(this.items.get(item.id) || item);
      return false;
    }
    if (r.status === 0 || r.status >= 500) this.onFailure();
    this.errors.set(item.id, r.message);
    if (fromForm) this._error(item.id, r.message);
    else this._replace(this.items.get(item.id) || item);
    return false;
  }
}
