// Small helpers: building elements, and words for events, states and actors.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export const short = (id) => (id ? String(id).slice(0, 8) : "—");

export function stateCell(state) {
  return h("span", { class: `state-${state}` }, state || "—");
}

export function processes(counts) {
  const parts = Object.entries(counts || {}).sort().map(([k, v]) => `${k}=${v}`);
  return parts.length ? parts.join(" ") : "none";
}

// Who caused an event, from the actor its write recorded in its meta (when there is one).
export function actorOf(event) {
  const actor = event.meta ? event.meta.actor : event.actor;
  if (!actor) return "—";
  if (typeof actor === "string") return actor;
  return actor.key || actor.name || actor.component || "—";
}

export function time(text) {
  return text ? text.replace("T", " ").replace(/\.\d+Z$/, "Z") : "—";
}

// One event in a few words (the event's Flynn data).
export function describe(event) {
  const d = event.data || {};
  switch (event.object_type) {
    case "app": return `app ${d.name}`;
    case "app_deletion": return "app deleted";
    case "app_release": return `release ${short(d.release && d.release.id)} set as current`;
    case "release": return `release ${short(d.id)} created`;
    case "release_deletion": return "release deleted";
    case "artifact": return `artifact ${short(d.id)} (${d.type})`;
    case "scale": return d.processes ? `scaled to ${processes(d.processes)}` : "formation deleted";
    case "job": return `job ${d.type || "run"} ${short(d.uuid || d.id)} ${d.state}`;
    case "deployment":
      return `deployment ${short(d.deployment)} ${d.status}` +
        (d.job_type ? ` (${d.job_type} ${d.job_state})` : "") + (d.error ? `: ${d.error}` : "");
    case "route": return `route ${d.type} ${d.domain || ":" + d.port} → ${d.service}`;
    case "route_deletion": return "route deleted";
    case "resource": return `resource ${short(d.id)} added`;
    case "resource_deletion": return `resource ${short(d.id)} deleted`;
    case "provider": return `provider ${d.name}`;
    default: return event.object_type;
  }
}
