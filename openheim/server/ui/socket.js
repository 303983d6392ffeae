// The /ws connection: envelopes on two channels, JSON-RPC requests matched by id, fs requests
// matched by their own ids, and reconnection with exponential backoff. The token travels as a
// WebSocket subprotocol (browsers cannot set headers there), never in the URL.

export const SUBPROTOCOL = "openheim.v1";
const CLOSE_UNAUTHORIZED = 4401;
const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 10_000;

export class RpcError extends Error {
  constructor(error) {
    super(error?.message || "request failed");
    this.code = error?.code;
  }
}

function base64url(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * handlers: onOpen() once the server greeted us (we are authenticated), onDown(info) when the
 * socket dropped ({retryInMs}), onUnauthorized(), onRequest(msg), onNotification(msg),
 * onFsEvent(data).
 */
export class Link {
  constructor(url, token, handlers) {
    this.url = url;
    this.token = token;
    this.handlers = handlers;
    this.ws = null;
    this.nextId = 1;
    this.nextFsId = 1;
    this.pending = new Map();
    this.pendingFs = new Map();
    this.attempt = 0;
    this.stopped = false;
    this.timer = null;
  }

  start() {
    this.stopped = false;
    const protocols = [SUBPROTOCOL];
    if (this.token) protocols.push(`openheim.bearer.${base64url(this.token)}`);
    const ws = new WebSocket(this.url, protocols);
    this.ws = ws;
    ws.addEventListener("message", (event) => this.received(event.data));
    ws.addEventListener("close", (event) => this.closed(ws, event.code));
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.ws?.close(1000);
  }

  get open() {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  /** Reconnect now (the user asked), instead of waiting out the backoff. */
  retryNow() {
    if (this.stopped || this.open) return;
    clearTimeout(this.timer);
    this.start();
  }

  closed(ws, code) {
    if (ws !== this.ws) return;
    this.ws = null;
    const lost = new Error("the connection to the server was lost");
    for (const { reject } of [...this.pending.values(), ...this.pendingFs.values()]) reject(lost);
    this.pending.clear();
    this.pendingFs.clear();
    if (this.stopped) return;
    if (code === CLOSE_UNAUTHORIZED) {
      this.stopped = true;
      this.handlers.onUnauthorized();
      return;
    }
    const base = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** this.attempt);
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.attempt++;
    this.handlers.onDown({ retryInMs: delay });
    this.timer = setTimeout(() => this.start(), delay);
  }

  received(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    const data = frame?.data;
    if (frame?.channel === "fs") this.receivedFs(data);
    else if (frame?.channel === "agent" && data) this.receivedAgent(data);
  }

  receivedFs(data) {
    if (data?.type === "connected") {
      this.attempt = 0;
      this.handlers.onOpen();
    } else if (data?.type === "fs_event") {
      this.handlers.onFsEvent(data);
    } else if (data?.id !== undefined && this.pendingFs.has(data.id)) {
      const { resolve, reject } = this.pendingFs.get(data.id);
      this.pendingFs.delete(data.id);
      if (data.type === "error") reject(new Error(data.message));
      else resolve(data);
    } else if (data?.type === "error") {
      this.handlers.onFsEvent(data);
    }
  }

  receivedAgent(message) {
    if (message.method !== undefined) {
      if (message.id !== undefined && message.id !== null) this.handlers.onRequest(message);
      else this.handlers.onNotification(message);
      return;
    }
    const waiter = this.pending.get(message.id);
    if (!waiter) return;
    this.pending.delete(message.id);
    if (message.error) waiter.reject(new RpcError(message.error));
    else waiter.resolve(message.result);
  }

  send(channel, data) {
    if (!this.open) throw new Error("not connected to the server");
    this.ws.send(JSON.stringify({ channel, data }));
  }

  request(method, params) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      try {
        this.send("agent", { jsonrpc: "2.0", id, method, params });
        this.pending.set(id, { resolve, reject });
      } catch (error) {
        reject(error);
      }
    });
  }

  notify(method, params) {
    if (this.open) this.send("agent", { jsonrpc: "2.0", method, params });
  }

  reply(id, result) {
    if (this.open) this.send("agent", { jsonrpc: "2.0", id, result });
  }

  replyError(id, code, message) {
    if (this.open) this.send("agent", { jsonrpc: "2.0", id, error: { code, message } });
  }

  fs(action, fields = {}) {
    const id = `fs-${this.nextFsId++}`;
    return new Promise((resolve, reject) => {
      try {
        this.send("fs", { action, ...fields, id });
        this.pendingFs.set(id, { resolve, reject });
      } catch (error) {
        reject(error);
      }
    });
  }
}
