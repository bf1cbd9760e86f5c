// The top bar's notification bell on every page (templates/_bell.html): the unread count, a dropdown
// of the newest ten (opening it marks them read), toasts for new ones and, if the member opts in,
// a browser notification while the tab is hidden. Events come over the inbox socket (/ws/inbox/,
// docs/protocol.md); every (re)connect's hello carries the count, so a missed nudge heals itself.
// Other modules hear the socket's frames as `inbox:frame` events on `document` (work.js: live rows).

import { apiRequest, ReconnectingSocket } from "../office/lib/http.js";

const NEWEST = 10;
const TOAST_MS = 6000;
const PING_EVERY_MS = 25000;
const CLOSE_NOT_SIGNED_IN = 4401;
const DESKTOP_KEY = "office.inbox.desktop"; // "on" once the member asked for browser notifications

const bell = document.getElementById("bell");
const button = document.getElementById("bell-button");
const panel = document.getElementById("bell-panel");
const list = document.getElementById("bell-list");
const countEl = document.getElementById("bell-count");
const countLabel = document.getElementById("bell-count-label");
const desktopButton = document.getElementById("bell-desktop");
const toasts = document.getElementById("toasts");

let unread = Number(bell.dataset.unread) || 0;
const announced = new Set(); // notification ids already counted (a frame can come twice over a reconnect)
let connections = 0;

function setUnread(n) {
  unread = Math.max(0, n);
  bell.dataset.unread = String(unread);
  countEl.textContent = String(unread);
  countEl.hidden = unread === 0;
  countLabel.textContent = `${unread} unread`;
}

function timeText(iso) {
  const at = new Date(iso);
  return Number.isNaN(at.getTime()) ? "" : at.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

function titleNode(n) {
  const node = document.createElement(n.url ? "a" : "span");
  if (n.url) node.href = n.url;
  node.textContent = n.title;
  return node;
}

function itemNode(n) {
  const li = document.createElement("li");
  li.className = "bell-item" + (n.read ? "" : " is-unread");
  li.dataset.id = String(n.id);
  const body = document.createElement("div");
  body.className = "bell-item-body";
  body.textContent = n.body || "";
  const time = document.createElement("time");
  time.dateTime = n.created_at;
  time.textContent = timeText(n.created_at);
  li.append(titleNode(n), body, time);
  return li;
}

function renderList(notifications) {
  list.replaceChildren(...notifications.map(itemNode));
  if (!notifications.length) {
    const empty = document.createElement("li");
    empty.className = "bell-empty";
    empty.textContent = "No notifications.";
    list.append(empty);
  }
}

async function openPanel() {
  panel.hidden = false;
  button.setAttribute("aria-expanded", "true");
  const res = await apiRequest(`/api/notifications/?limit=${NEWEST}`);
  if (!res.ok) {
    list.replaceChildren(Object.assign(document.createElement("li"), { className: "bell-empty", textContent: res.message }));
    return;
  }
  renderList(res.data.notifications);
  setUnread(res.data.unread);
  // Seen is read: mark what the dropdown shows; the server's answer (and its notification.read
  // frame, to this tab and the others) carries the count that is left.
  const ids = res.data.notifications.filter((n) => !n.read).map((n) => n.id);
  if (!ids.length) return;
  const marked = await apiRequest("/api/notifications/read/", { method: "POST", body: { ids } });
  if (marked.ok) setUnread(marked.data.unread);
}

function closePanel() {
  panel.hidden = true;
  button.setAttribute("aria-expanded", "false");
  for (const li of list.querySelectorAll(".is-unread")) li.classList.remove("is-unread");
}

function toast(n) {
  const node = document.createElement("div");
  node.className = "toast";
  const body = document.createElement("div");
  body.className = "toast-body";
  body.textContent = n.body || "";
  node.append(titleNode(n), body);
  toasts.append(node);
  setTimeout(() => node.remove(), TOAST_MS);
}

// --- browser notifications: opt-in, and only while this tab is hidden ---

function desktopSupported() {
  return "Notification" in window;
}

function desktopOn() {
  return desktopSupported() && Notification.permission === "granted" && localStorage.getItem(DESKTOP_KEY) === "on";
}

function renderDesktopButton() {
  if (!desktopSupported() || Notification.permission === "denied") {
    desktopButton.hidden = true;
    return;
  }
  desktopButton.hidden = false;
  desktopButton.textContent = desktopOn() ? "Stop notifying me when away" : "Notify me when away";
  desktopButton.setAttribute("aria-pressed", desktopOn() ? "true" : "false");
}

desktopButton.addEventListener("click", async () => {
  if (desktopOn()) {
    localStorage.removeItem(DESKTOP_KEY);
  } else if ((await Notification.requestPermission()) === "granted") {
    localStorage.setItem(DESKTOP_KEY, "on");
  }
  renderDesktopButton();
});

function desktopNotify(n) {
  if (!document.hidden || !desktopOn()) return;
  try {
    const shown = new Notification(n.title, { body: n.body || "", tag: `office-notification-${n.id}` });
    shown.onclick = () => {
      window.focus();
      if (n.url) location.assign(n.url);
    };
  } catch (err) {
    console.warn("inbox: the browser refused a notification", err);
  }
}

// --- the socket ---

function onFrame(frame) {
  switch (frame.type) {
    case "hello":
      connections += 1;
      frame.reconnect = connections > 1;
      setUnread(frame.unread);
      if (!panel.hidden) openPanel();
      break;
    case "notification.new": {
      const n = frame.notification;
      if (!n || announced.has(n.id)) break;
      announced.add(n.id);
      if (!n.read) setUnread(unread + 1);
      toast(n);
      desktopNotify(n);
      if (!panel.hidden) {
        list.querySelector(".bell-empty")?.remove();
        list.prepend(itemNode(n));
      }
      break;
    }
    case "notification.read": {
      setUnread(frame.unread);
      const ids = frame.ids ? new Set(frame.ids) : null;
      for (const li of list.querySelectorAll(".is-unread")) {
        if (!ids || ids.has(Number(li.dataset.id))) li.classList.remove("is-unread");
      }
      break;
    }
    default:
      break;
  }
  document.dispatchEvent(new CustomEvent("inbox:frame", { detail: frame }));
}

const socket = new ReconnectingSocket("/ws/inbox/", {
  onFrame,
  onState: (state) => { bell.dataset.state = state; },
  onClose: (event) => event.code !== CLOSE_NOT_SIGNED_IN,
});
socket.connect();
setInterval(() => {
  if (socket.ws && socket.ws.readyState === WebSocket.OPEN) socket.ws.send('{"type":"ping"}');
}, PING_EVERY_MS);

// --- the dropdown ---

button.addEventListener("click", () => (panel.hidden ? openPanel() : closePanel()));
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && !panel.hidden) {
    closePanel();
    button.focus();
  }
});
document.addEventListener("click", (e) => {
  if (!panel.hidden && !bell.contains(e.target)) closePanel();
});
renderDesktopButton();
setUnread(unread);
