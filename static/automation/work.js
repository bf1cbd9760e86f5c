// Tasks and tickets pages: a status picker saves as soon as it changes (the form still works without
// JS), and the rows follow `task.changed` / `ticket.changed` from the inbox socket (inbox.js): a row
// is updated in place, added when it now belongs on this view, or removed when it no longer does.

import { csrfToken } from "../office/lib/http.js";

function autosubmit(select) {
  select.addEventListener("change", () => select.form.requestSubmit());
}

for (const select of document.querySelectorAll("select[data-autosubmit]")) autosubmit(select);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "className") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function muted(text) {
  return el("span", { className: "work-muted", text });
}

function json(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : null;
}

function truncate(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

function dayText(isoDate) {
  const [y, m, d] = isoDate.split("-").map(Number);
  return new Date(y, m - 1, d).toLocaleDateString([], { weekday: "short", day: "numeric", month: "short" });
}

/** The status form of a row: the same POST as the server-rendered one. */
function statusForm({ action, next, selectId, label, options, value, className }) {
  const select = el("select", { id: selectId, name: "status", "data-autosubmit": true, className });
  for (const [optionValue, optionLabel] of options) {
    select.append(el("option", { value: optionValue, selected: optionValue === value, text: optionLabel }));
  }
  autosubmit(select);
  return el("form", { method: "post", action, className: "work-status-form" },
    el("input", { type: "hidden", name: "csrfmiddlewaretoken", value: csrfToken() }),
    el("input", { type: "hidden", name: "next", value: next }),
    el("label", { className: "sr-only", for: selectId, text: label }),
    select);
}

/** Put `row` in `table` (replacing the row with its id, else first), or take it out; empty-state follows. */
function placeRow(table, empty, selector, row) {
  const old = table.querySelector(selector);
  if (row && old) {
    // Keep focus on a picker being used; otherwise replace the whole row.
    if (old.contains(document.activeElement)) return;
    old.replaceWith(row);
  } else if (row) {
    table.tBodies[0].prepend(row);
  } else if (old) {
    old.remove();
  }
  if (row) {
    row.classList.add("is-live");
  }
  const rows = table.tBodies[0].rows.length;
  table.hidden = rows === 0;
  if (empty) empty.hidden = rows > 0;
}

// --- tasks ---

const tasksPage = document.getElementById("tasks-page");
if (tasksPage) {
  const ACTIVE = new Set(["open", "in_progress"]);
  const me = Number(tasksPage.dataset.userId);
  const tab = tasksPage.dataset.tab;
  const roomId = Number(tasksPage.dataset.room) || null;
  const showClosed = tasksPage.dataset.showClosed === "1";
  const teamRooms = new Set(json("task-team-rooms") || []);
  const statuses = json("task-statuses") || [];
  const table = document.getElementById("task-table");
  const empty = document.getElementById("task-empty");

  const belongs = (task) => {
    if (!showClosed && !ACTIVE.has(task.status)) return false;
    if (tab === "mine") return task.owner === me;
    if (tab === "team") return teamRooms.has(task.room);
    if (tab === "room") return task.room === roomId;
    return true; // "all": the event reached this member, so they may see the task
  };

  const taskRow = (task) => {
    const source = task.source_kind === "action_item"
      ? el("div", { className: "work-source", title: task.provenance?.owner_reason || "" },
        "From a meeting action item" + (task.provenance?.owner_from === "calendar"
          ? ` · owner picked by calendar: ${task.provenance.owner_reason}` : ""))
      : null;
    return el("tr", { id: `task-${task.id}`, "data-task-id": task.id },
      el("td", {},
        el("div", { className: "work-title", text: task.title }),
        task.description ? el("div", { className: "work-detail", text: truncate(task.description, 200) }) : null,
        source),
      el("td", {}, task.owner ? task.owner_name : muted("unassigned")),
      el("td", {}, task.due_date ? el("time", { datetime: task.due_date, text: dayText(task.due_date) }) : muted("—")),
      el("td", {}, task.room ? el("a", { href: `?room=${task.room}`, text: task.room_name }) : muted("—")),
      el("td", {}, statusForm({
        action: tasksPage.dataset.statusUrl.replace("/0/", `/${task.id}/`), next: tasksPage.dataset.next,
        selectId: `status-${task.id}`, label: `Status of ${task.title}`, options: statuses, value: task.status,
        className: `work-status work-status-${task.status}`,
      })));
  };

  document.addEventListener("inbox:frame", ({ detail: frame }) => {
    if (frame.type !== "task.changed" || !frame.task) return;
    const task = frame.task;
    placeRow(table, empty, `tr[data-task-id="${task.id}"]`, belongs(task) ? taskRow(task) : null);
  });
}

// --- tickets ---

const ticketsPage = document.getElementById("tickets-page");
if (ticketsPage) {
  const OPEN = new Set(["open", "acknowledged"]);
  const staff = ticketsPage.dataset.staff === "1";
  const openOnly = ticketsPage.dataset.show === "open";
  const transitions = json("ticket-transitions") || {};
  const labels = json("ticket-labels") || { kind: {}, severity: {}, status: {} };
  const table = document.getElementById("ticket-table");
  const empty = document.getElementById("ticket-empty");
  const capfirst = (s) => s.charAt(0).toUpperCase() + s.slice(1);

  const ticketRow = (ticket) => {
    const statusLabel = labels.status[ticket.status] || ticket.status;
    const status = staff
      ? statusForm({
        action: ticketsPage.dataset.statusUrl.replace("/0/", `/${ticket.id}/`), next: ticketsPage.dataset.next,
        selectId: `ticket-status-${ticket.id}`, label: `Status of ${ticket.title}`, value: ticket.status,
        options: [[ticket.status, statusLabel], ...(transitions[ticket.status] || []).map((t) => [t, capfirst(t)])],
        className: "work-status",
      })
      : statusLabel;
    const opened = new Date(ticket.created_at);
    return el("tr", { id: `ticket-${ticket.id}`, "data-ticket-id": ticket.id },
      el("td", {},
        el("div", { className: "work-title", text: ticket.title }),
        ticket.detail ? el("div", { className: "work-detail", text: truncate(ticket.detail, 240) }) : null,
        el("div", { className: "work-source", text: `${labels.kind[ticket.kind] || ticket.kind} · ${ticket.source}` })),
      el("td", { text: ticket.room_name || "—" }),
      el("td", {}, el("span", { className: `work-severity work-severity-${ticket.severity}`,
        text: labels.severity[ticket.severity] || ticket.severity })),
      el("td", {}, el("time", { datetime: ticket.created_at,
        text: opened.toLocaleString([], { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" }) })),
      el("td", {}, status));
  };

  document.addEventListener("inbox:frame", ({ detail: frame }) => {
    if (frame.type !== "ticket.changed" || !frame.ticket) return;
    const ticket = frame.ticket;
    const keep = !openOnly || OPEN.has(ticket.status);
    placeRow(table, empty, `tr[data-ticket-id="${ticket.id}"]`, keep ? ticketRow(ticket) : null);
  });
}
