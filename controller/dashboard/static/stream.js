// The event stream, read with fetch so that a reconnection names the last event it got
// (Last-Event-Id): after a drop or a restart of the service nothing is missed. Events
// are handed over in batches, once per animation frame, so 200 a second cost one render
// a frame.

export class EventStream extends EventTarget {
  constructor(after) {
    super();
    this.lastId = after;
    this.queue = [];
    this.received = 0;
    this.delivered = 0;
    this.state = "connecting";
    this.stopped = false;
    this.scheduled = false;
  }

  start() { this.loop(); return this; }

  stop() { this.stopped = true; if (this.controller) this.controller.abort(); }

  setState(state, detail) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, detail } }));
  }

  async loop() {
    let delay = 250;
    while (!this.stopped) {
      try {
        await this.read();
        delay = 250;  // it ended (a restart): reconnect at once
      } catch (error) {
        if (this.stopped) return;
        if (error.status === 401) { this.setState("expired"); return; }
        this.setState("down", error.message);
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 5000);
      }
    }
  }

  async read() {
    this.controller = new AbortController();
    // Last-Event-Id 0 is no resumption to the service: past=true replays from the start.
    const response = await fetch(this.lastId ? "/events" : "/events?past=true", {
      headers: { Accept: "text/event-stream", "Last-Event-Id": String(this.lastId) },
      credentials: "same-origin", signal: this.controller.signal, cache: "no-store",
    });
    if (!response.ok) {
      const error = new Error(`the event stream answered ${response.status}`);
      error.status = response.status;
      throw error;
    }
    this.setState("live");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error("the event stream ended");
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        this.frame(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  }

  frame(text) {
    let id = null, data = "", kind = "message";
    for (const line of text.split("\n")) {
      if (line.startsWith("id:")) id = Number(line.slice(3).trim());
      else if (line.startsWith("data:")) data += line.slice(5).trimStart();
      else if (line.startsWith("event:")) kind = line.slice(6).trim();
    }
    if (kind === "error") throw new Error(data || "the event stream failed");
    if (!data || id === null || id <= this.lastId) return;
    this.lastId = id;
    this.received += 1;
    this.queue.push(JSON.parse(data));
    this.schedule();
  }

  schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    const flush = () => {
      this.scheduled = false;
      const batch = this.queue;
      this.queue = [];
      this.delivered += batch.length;
      this.dispatchEvent(new CustomEvent("batch", { detail: batch }));
    };
    // A hidden page gets no animation frames: a timer keeps its views current.
    if (document.hidden) setTimeout(flush, 100); else requestAnimationFrame(flush);
  }
}
