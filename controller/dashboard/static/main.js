// The dashboard's entry: sign-in, the session, the one event stream, and the page router.

import { api, events as apiEvents, ApiError } from "./api.js";
import { EventStream } from "./stream.js";
import { h } from "./dom.js";
import { appsPage } from "./apps.js";
import { appPage } from "./app.js";
import { feedPage } from "./feed.js";
import { historyPage } from "./history.js";

const main = document.getElementById("main");
const alertBox = document.getElementById("alert");
const connection = document.getElementById("connection");
const ctx = { session: null, stream: null, canAct: false, alert: showAlert, clearAlert };
window.evenflow = ctx;  // what the tests and the benchmark read (counts, last event id)

export function showAlert(message) {
  alertBox.textContent = message;
  alertBox.hidden = false;
}

export function clearAlert() { alertBox.hidden = true; alertBox.textContent = ""; }

function signInForm(message) {
  document.getElementById("nav").hidden = true;
  document.getElementById("sign-out").hidden = true;
  const input = h("input", { type: "password", id: "key", name: "key", required: true,
    autocomplete: "current-password" });
  const error = h("p", { class: "alert", role: "alert", hidden: !message }, message || "");
  const form = h("form", { onsubmit: async (e) => {
    e.preventDefault();
    try {
      await api("/dashboard/session", { method: "POST", body: { key: input.value } });
      input.value = "";
      await start();
    } catch (err) {
      error.textContent = err.status === 401 ? "This key is not valid." : err.message;
      error.hidden = false;
      input.focus();
    }
  } }, h("label", { for: "key" }, "API key"), input,
    h("button", { type: "submit", class: "primary" }, "Sign in"), error);
  main.replaceChildren(h("section", { class: "signin" }, h("h1", {}, "Sign in to Evenflow"),
    h("p", { class: "muted" }, "The key is exchanged for a session; it is not kept by the page."),
    form));
  input.focus();
}

function setConnection(state, detail) {
  connection.className = `status ${state === "live" ? "live" : "down"}`;
  connection.textContent = state === "live" ? "live" : state === "expired" ? "signed out"
    : `reconnecting…`;
  connection.title = detail || "";
  if (state === "expired") expired();
}

function expired() {
  if (ctx.stream) ctx.stream.stop();
  ctx.stream = null;
  ctx.session = null;
  signInForm("Your session has expired or was ended: sign in again.");
}

async function start() {
  clearAlert();
  const { doc, position } = await api("/dashboard/session");
  ctx.session = doc;
  ctx.canAct = doc.scope === "admin" || doc.scope === "deploy";
  document.getElementById("scope").textContent = doc.key ? `${doc.key} (${doc.scope})` : `${doc.scope} key`;
  document.getElementById("nav").hidden = false;
  document.getElementById("sign-out").hidden = false;
  if (ctx.stream) ctx.stream.stop();
  ctx.stream = new EventStream(position);
  ctx.stream.addEventListener("state", (e) => setConnection(e.detail.state, e.detail.detail));
  ctx.stream.start();
  route();
}

let current = null;

function route() {
  if (!ctx.session) return;
  if (current && current.stop) current.stop();
  clearAlert();
  const hash = location.hash || "#/";
  for (const link of document.querySelectorAll("nav a")) {
    const active = hash === link.getAttribute("href") ||
      (link.getAttribute("href") === "#/" && hash.startsWith("#/apps/"));
    if (active) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  }
  const view = h("div");
  main.replaceChildren(view);
  const appMatch = hash.match(/^#\/apps\/([^/?]+)/);
  if (ctx.session.scope === "stream" || hash.startsWith("#/feed")) current = feedPage(view, ctx);
  else if (hash.startsWith("#/history")) current = historyPage(view, ctx);
  else if (appMatch) current = appPage(view, ctx, decodeURIComponent(appMatch[1]));
  else current = appsPage(view, ctx);
  main.focus({ preventScroll: true });
}

window.addEventListener("hashchange", route);
apiEvents.addEventListener("expired", expired);
document.getElementById("sign-out").addEventListener("click", async () => {
  try { await api("/dashboard/session", { method: "DELETE" }); } catch (e) { /* gone anyway */ }
  if (ctx.stream) ctx.stream.stop();
  ctx.stream = null;
  ctx.session = null;
  signInForm("");
});

// Unhandled failures of a page (a refused action, a lost service) are said, not hidden.
window.addEventListener("unhandledrejection", (e) => {
  if (e.reason instanceof ApiError && e.reason.status === 401) return;
  showAlert(e.reason && e.reason.message ? e.reason.message : String(e.reason));
});

start().catch((err) => {
  if (err.status === 401) signInForm("");
  else { signInForm(""); showAlert(err.message); }
});
