// The time machine: an app, or the platform, as it was at a point of the log; and what
// changed between two points, with who made each change.

import { api, ApiError } from "./api.js";
import { h, short, time, processes, actorOf } from "./dom.js";

// A point as typed: an event id, or a time.
function point(text, prefix) {
  const value = text.trim();
  if (!value) return "";
  return /^\d+$/.test(value) ? `${prefix}=${value}` : `${prefix}_time=${encodeURIComponent(value)}`;
}

// The time machine may answer 503 while it folds a long log: it asks again.
async function patient(path, say) {
  for (let tries = 0; tries < 60; tries++) {
    try { return (await api(path)).doc; } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 503 || !err.doc || !err.doc.retry) throw err;
      say(err.message);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  throw new Error("the time machine did not get there; try a nearer point");
}

function kv(rows, empty) {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h("table", {}, h("tbody", {}, rows.map(([k, v]) => h("tr", {}, h("td", { class: "mono" }, k), h("td", { class: "mono" }, v)))));
}

function appState(view) {
  const r = view.release;
  const formation = r ? (view.formations.find((f) => f.release === r.id) || {}).processes : null;
  return h("section", { class: "app-state" },
    h("h2", {}, `${view.app.name}${view.deleted ? " (deleted)" : ""}`),
    h("p", {}, "Release ", h("code", {}, r ? r.id : "none"), r ? ` · ${processes(formation)}` : ""),
    h("h3", {}, "Env"), kv(Object.entries((r && r.env) || {}).sort(), "No env."),
    h("h3", {}, "Routes"), kv(view.routes.map((x) => [x.type, x.type === "tcp" ? `:${x.port}` : `${x.domain}${x.path || "/"}`]), "No routes."),
    h("h3", {}, "Resources"), kv(view.resources.map((x) => [short(x.id), Object.keys(x.env || {}).join(", ")]), "No resources."),
    h("h3", {}, "Jobs"), kv(view.jobs.slice(0, 20).map((j) => [`${j.type || "run"} ${short(j.uuid || j.id)}`, j.state]), "No jobs."));
}

function whoFor(doc, part) {
  const ids = new Set((doc.by || {})[part] || []);
  const events = doc.events.filter((e) => ids.has(e.id));
  if (!events.length) return null;
  return h("p", { class: "by" }, "By ", events.map((e, n) => [n ? ", " : "",
    h("strong", { class: "who" }, actorOf(e)), ` (event ${e.id}, ${time(e.created_at)})`]));
}

function changesView(doc) {
  const c = doc.changes;
  const parts = [];
  const beforeAfter = (title, part, rows) => parts.push(h("section", { class: `change-${part}` },
    h("h3", {}, title), h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Before"), h("th", {}, "After"))),
      h("tbody", {}, rows.map(([k, b, a]) => h("tr", {}, h("td", { class: "mono" }, k),
        h("td", { class: "diff-before mono" }, b ?? "—"), h("td", { class: "diff-after mono" }, a ?? "—"))))),
    whoFor(doc, part)));
  if (doc.app) {
    if (c.app) beforeAfter("App", "app", [["app", c.app.before, c.app.after]]);
    if (c.release) beforeAfter("Release", "release", [["release", short(c.release.before), short(c.release.after)]]);
    if (c.env) beforeAfter("Env", "env", Object.entries(c.env).map(([k, v]) => [k, v.before, v.after]));
    if (c.formation) beforeAfter("Formation", "formation", Object.entries(c.formation).map(([k, v]) => [k, v.before, v.after]));
    for (const part of ["routes", "resources"]) {
      if (!c[part]) continue;
      const label = (x) => x.domain ? `${x.domain}${x.path || "/"}` : x.port ? `:${x.port}` : short(x.id);
      beforeAfter(part[0].toUpperCase() + part.slice(1), part, [
        ...c[part].added.map((x) => [label(x), null, "added"]),
        ...c[part].removed.map((x) => [label(x), "present", "removed"]),
        ...c[part].changed.map((x) => [label(x.after), "was", "changed"])]);
    }
  } else {
    parts.push(h("p", {}, `Apps added: ${c.added.join(", ") || "none"}; removed: ${c.removed.join(", ") || "none"}.`));
    for (const app of Object.values(c.apps)) parts.push(h("p", {}, `${app.name}: ${Object.keys(app.changes).join(", ")} changed`));
  }
  if (!parts.length) parts.push(h("p", { class: "muted" }, "Nothing changed between these points."));
  const events = h("table", {}, h("thead", {}, h("tr", {}, ["Event", "Time", "What", "Who"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, doc.events.map((e) => h("tr", {}, h("td", { class: "mono" }, e.id), h("td", {}, time(e.created_at)),
      h("td", {}, e.summary), h("td", { class: "who" }, actorOf(e))))));
  return h("div", { id: "changes" },
    h("h2", {}, `From event ${doc.from.event_id} (${time(doc.from.at)}) to event ${doc.to.event_id} (${time(doc.to.at)})`),
    parts, h("h2", {}, "Events between"), h("div", { class: "scroll" }, events),
    doc.truncated ? h("p", { class: "muted" }, "Only the first events are listed.") : null);
}

export function historyPage(root, ctx) {
  const field = (id, label, hint) => {
    const input = h("input", { id, name: id, "aria-describedby": `${id}-hint` });
    return [h("label", { for: id }, label, input, h("span", { id: `${id}-hint`, class: "muted" }, hint)), input];
  };
  const [appLabel, app] = field("tm-app", "App", "name or id; empty: the platform");
  const [fromLabel, from] = field("tm-from", "From", "event id or time; empty: the start");
  const [toLabel, to] = field("tm-to", "At / to", "event id or time; empty: now");
  const out = h("div", { id: "tm-result", "aria-live": "polite" });
  const say = (text) => out.replaceChildren(h("p", { class: "muted" }, text));
  const query = () => [point(to.value, "at"), app.value.trim() ? `app=${encodeURIComponent(app.value.trim())}` : ""]
    .filter(Boolean).join("&");
  const run = (action) => async (e) => {
    e.preventDefault();
    say("Folding the log…");
    try { await action(); } catch (err) {
      say(err.status === 404 ? "No such app at that point." : `Refused: ${err.message}`);
    }
  };
  const show = run(async () => {
    const doc = await patient(`/dashboard/history/state?${query()}`, say);
    out.replaceChildren(h("h2", {}, `As it was after event ${doc.last_event_id} (${time(doc.last_event_at)})`),
      ...(doc.apps.length ? doc.apps.map(appState) : [h("p", { class: "muted" }, "No apps then.")]));
  });
  const compare = run(async () => {
    const q = [query(), point(from.value, "at_from")].filter(Boolean).join("&");
    out.replaceChildren(changesView(await patient(`/dashboard/history/changes?${q}`, say)));
  });
  root.append(h("h1", {}, "Time machine"),
    h("form", { class: "inline", onsubmit: show }, appLabel, fromLabel, toLabel,
      h("button", { type: "submit", class: "primary" }, "Show"),
      h("button", { type: "button", onclick: compare }, "Compare")), out);
  const wanted = new URLSearchParams(location.hash.split("?")[1] || "");
  if (wanted.get("app")) app.value = wanted.get("app");
  return { stop: () => {} };
}
