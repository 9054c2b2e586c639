// Calls to the service with the session cookie (never a key): writes carry the header
// the service requires of the dashboard's writes; a 401 means the session is over.

export class ApiError extends Error {
  constructor(status, doc) {
    super(doc && doc.message ? doc.message : `the service answered ${status}`);
    this.status = status;
    this.doc = doc;
  }
}

export const events = new EventTarget();

export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-Evenflow-Dashboard"] = "1";
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiError(0, { message: "the service cannot be reached" });
  }
  const position = Number(response.headers.get("Evenflow-Event-Id") || 0);
  const text = await response.text();
  let doc = null;
  if (text && (response.headers.get("Content-Type") || "").includes("json")) doc = JSON.parse(text);
  if (response.status === 401 && path !== "/dashboard/session") {
    events.dispatchEvent(new Event("expired"));
  }
  if (!response.ok) throw new ApiError(response.status, doc);
  return { doc, position };
}

// Several reads of one page: the smallest position is where its live updates start.
export async function load(paths) {
  const answers = await Promise.all(paths.map((p) => api(p).catch((e) => {
    if (e.status === 404) return { doc: null, position: Infinity };
    throw e;
  })));
  const position = Math.min(...answers.map((a) => a.position));
  return { docs: answers.map((a) => a.doc), position: Number.isFinite(position) ? position : 0 };
}
