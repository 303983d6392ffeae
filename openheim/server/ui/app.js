// The page: login, the socket's lifecycle, and the glue between the session list, the chat
// and the file pane. Everything the server says reaches the DOM through dom.js helpers.

import { getJson, saveToken, takeToken } from "./api.js";
import { ChatView } from "./chat.js";
import { byTestId, clear, h } from "./dom.js";
import { FilesView } from "./files.js";
import { SessionList } from "./sessions.js";
import { Link, RpcError } from "./socket.js";

const SESSION_NOT_FOUND = -32002;
const TOAST_MS = 4000;

function sessionFromHash() {
  const match = /^#session=([0-9a-fA-F-]{36})$/.exec(window.location.hash);
  return match ? match[1] : null;
}

function setHash(sessionId) {
  const hash = sessionId ? `#session=${sessionId}` : "";
  if (window.location.hash !== hash) {
    window.history.replaceState(window.history.state, "", window.location.pathname + window.location.search + hash);
  }
}

function selectOptions(options) {
  return options.flatMap((option) => (option.options
    ? [h("optgroup", { label: option.name || option.group }, selectOptions(option.options))]
    : [h("option", { value: option.value, title: option.description || null, text: option.name || option.value })]));
}

class App {
  constructor() {
    this.token = takeToken();
    this.link = null;
    this.root = null;
    this.models = null;
    this.sessionId = sessionFromHash();
    this.sessionCwd = null;
    this.configOptions = [];
    this.draftModel = null;
    this.running = new Map();
    this.toastTimer = null;
    this.chat = new ChatView(document.getElementById("chat-log"), { onOpenPath: (p) => this.openPath(p) });
    this.files = new FilesView(document.getElementById("files-pane"), { onStatus: (m, bad) => this.toast(m, bad) });
    this.sessions = new SessionList(byTestId("session-list"), { onOpen: (id) => this.openSession(id) });
    this.bind();
    this.renderPickers();
  }

  bind() {
    const prompt = byTestId("prompt-input");
    document.getElementById("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    prompt.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.send();
      }
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !document.querySelector("dialog[open]") && this.isRunning()) {
        event.preventDefault();
        this.cancel();
      }
    });
    byTestId("cancel").addEventListener("click", () => this.cancel());
    byTestId("new-session").addEventListener("click", () => this.newSession());
    byTestId("reconnect-now").addEventListener("click", () => this.link?.retryNow());
    document.getElementById("login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.token = byTestId("token-input").value.trim();
      saveToken(this.token);
      this.connect();
    });
    for (const tab of document.querySelectorAll("[data-tab]")) {
      tab.addEventListener("click", () => this.showTab(tab.dataset.tab));
    }
    window.addEventListener("hashchange", () => {
      const id = sessionFromHash();
      if (id && id !== this.sessionId) this.openSession(id);
    });
  }

  connect() {
    this.link?.stop();
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    this.link = new Link(`${scheme}://${window.location.host}/ws`, this.token, {
      onOpen: () => this.opened().catch((error) => this.toast(error.message, true)),
      onDown: (info) => this.down(info),
      onUnauthorized: () => this.unauthorized(),
      onRequest: (message) => this.agentRequest(message),
      onNotification: (message) => this.agentNotification(message),
      onFsEvent: (data) => this.files.onEvent(data),
    });
    this.connection("connecting", "Connecting…");
    this.link.start();
  }

  connection(state, text) {
    const el = byTestId("connection-status");
    el.dataset.state = state;
    el.textContent = text;
    byTestId("reconnect-now").hidden = state !== "reconnecting";
    byTestId("send").disabled = state !== "connected";
  }

  async opened() {
    document.getElementById("login").hidden = true;
    this.connection("connected", "Connected");
    const link = this.link;
    await link.request("initialize", { protocolVersion: 1, clientCapabilities: {} });
    if (!this.root) {
      const workspace = await getJson("/api/workspace", this.token);
      this.root = workspace.root;
      document.getElementById("tenant").textContent = workspace.tenant;
    }
    this.models ??= await getJson("/api/models", this.token).catch(() => null);
    // The chat and the file pane come back independently: one failing leaves the other.
    const chat = (async () => {
      await this.refreshSessions();
      if (this.sessionId) await this.loadSession(this.sessionId);
      else this.renderPickers();
    })();
    const results = await Promise.allSettled([chat, this.files.start(link, this.root)]);
    const failed = results.find((result) => result.status === "rejected");
    if (failed) throw failed.reason;
  }

  down({ retryInMs }) {
    this.connection("reconnecting", `Disconnected; reconnecting in ${Math.ceil(retryInMs / 1000)} s`);
  }

  unauthorized() {
    const tried = Boolean(this.token);
    this.token = "";
    saveToken("");
    this.connection("signed-out", "Signed out");
    document.getElementById("login").hidden = false;
    document.getElementById("login-error").textContent = tried ? "That token was not accepted." : "";
    byTestId("token-input").focus();
  }

  toast(message, bad = false) {
    const el = document.getElementById("toast");
    el.textContent = message;
    el.classList.toggle("bad", bad);
    el.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => { el.hidden = true; }, TOAST_MS);
  }

  showTab(name) {
    document.body.dataset.tab = name;
    for (const tab of document.querySelectorAll("[data-tab]")) {
      tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
    }
  }

  async refreshSessions() {
    this.sessions.show(await getJson("/api/sessions?limit=100", this.token));
    this.sessions.select(this.sessionId);
  }

  setTitle(title) {
    document.getElementById("chat-title").textContent = title || (this.sessionId ? "Untitled session" : "New session");
  }

  // --- sessions -----------------------------------------------------------------------------

  newSession() {
    this.sessionId = null;
    setHash(null);
    this.configOptions = [];
    this.chat.reset();
    this.sessions.select(null);
    this.setTitle(null);
    this.renderPickers();
    this.updateRunning();
    this.showTab("chat");
    byTestId("prompt-input").focus();
  }

  async openSession(id) {
    this.showTab("chat");
    if (id === this.sessionId) return;
    try {
      await this.loadSession(id);
    } catch (error) {
      this.toast(error.message, true);
    }
  }

  async loadSession(id) {
    const meta = this.sessions.meta(id);
    this.sessionId = id;
    this.sessionCwd = meta?.cwd || this.root;
    setHash(id);
    this.sessions.select(id);
    this.chat.reset();
    this.chat.knownCost(meta?.cost_usd);
    this.setTitle(meta?.title);
    this.updateRunning();
    try {
      const result = await this.link.request("session/load", { sessionId: id, cwd: this.sessionCwd, mcpServers: [] });
      if (this.sessionId === id) this.setConfig(result.configOptions || []);
    } catch (error) {
      if (!(error instanceof RpcError) || error.code !== SESSION_NOT_FOUND) throw error;
      this.chat.error("This session no longer exists.");
      this.sessionId = null;
      setHash(null);
    }
  }

  async createSession() {
    const params = { cwd: this.root, mcpServers: [] };
    if (this.draftModel) params._meta = { model: this.draftModel };
    const result = await this.link.request("session/new", params);
    this.sessionId = result.sessionId;
    this.sessionCwd = this.root;
    setHash(this.sessionId);
    this.setConfig(result.configOptions || []);
    this.sessions.touch(this.sessionId, null, new Date().toISOString());
    this.sessions.select(this.sessionId);
    this.setTitle(null);
  }

  // --- turns --------------------------------------------------------------------------------

  isRunning() {
    return (this.running.get(this.sessionId) || 0) > 0;
  }

  updateRunning() {
    const running = this.isRunning();
    byTestId("cancel").hidden = !running;
    document.getElementById("chat-pane").dataset.running = String(running);
  }

  async send() {
    const input = byTestId("prompt-input");
    const text = input.value;
    if (!text.trim()) return;
    if (!this.link?.open) {
      this.toast("Not connected to the server; your message is kept.", true);
      return;
    }
    input.value = "";
    let sessionId = this.sessionId;
    try {
      if (!sessionId) {
        await this.createSession();
        sessionId = this.sessionId;
      }
    } catch (error) {
      input.value = text;
      this.toast(error.message, true);
      return;
    }
    this.running.set(sessionId, (this.running.get(sessionId) || 0) + 1);
    this.updateRunning();
    this.chat.addUser(text);
    try {
      const result = await this.link.request("session/prompt", { sessionId, prompt: [{ type: "text", text }] });
      if (this.sessionId === sessionId) this.chat.endTurn(result.stopReason);
    } catch (error) {
      if (this.sessionId === sessionId) this.chat.error(error.message);
    } finally {
      this.running.set(sessionId, this.running.get(sessionId) - 1);
      this.updateRunning();
      this.refreshSessions().catch(() => {});
    }
  }

  cancel() {
    if (this.sessionId && this.isRunning()) this.link.notify("session/cancel", { sessionId: this.sessionId });
  }

  // --- what the agent sends -------------------------------------------------------------------

  agentRequest(message) {
    if (message.method !== "session/request_permission") {
      this.link.replyError(message.id, -32601, `Method not found: ${message.method}`);
      return;
    }
    if (message.params?.sessionId !== this.sessionId) {
      this.link.reply(message.id, { outcome: { outcome: "cancelled" } });
      this.toast("A tool call in another session asked for permission and was declined.", true);
      return;
    }
    this.chat.permission(message.id, message.params, (result) => this.link.reply(message.id, result));
  }

  agentNotification(message) {
    if (message.method === "$/cancel_request") {
      this.chat.cancelRequest(message.params?.requestId);
      return;
    }
    if (message.method !== "session/update") return;
    const { sessionId, update } = message.params || {};
    if (!update) return;
    if (update.sessionUpdate === "session_info_update") {
      this.sessions.touch(sessionId, update.title, update.updatedAt);
      this.sessions.select(this.sessionId);
      if (sessionId === this.sessionId && update.title) this.setTitle(update.title);
      return;
    }
    if (sessionId !== this.sessionId) return;
    if (update.sessionUpdate === "config_option_update") this.setConfig(update.configOptions || []);
    else if (update.sessionUpdate === "current_mode_update") {
      const mode = this.configOptions.find((option) => option.id === "mode");
      if (mode) mode.currentValue = update.currentModeId;
      this.renderPickers();
    } else this.chat.apply(update);
  }

  // --- config options (model, mode, ...) --------------------------------------------------------

  setConfig(options) {
    this.configOptions = options;
    this.renderPickers();
  }

  /** Before a session exists, the model picker offers /api/models; the choice goes to session/new. */
  draftOptions() {
    if (!this.models?.providers) return [];
    const providers = this.models.providers;
    const first = this.models.default_provider;
    const options = Object.entries(providers).flatMap(([name, provider]) =>
      (provider.models || []).map((model) => ({ value: `${name}/${model}`, name: `${name}/${model}` })));
    const fallback = first && providers[first] ? `${first}/${providers[first].default_model}` : options[0]?.value;
    return [{ id: "model", name: "Model", type: "select", currentValue: this.draftModel || fallback, options }];
  }

  renderPickers() {
    const box = clear(document.getElementById("pickers"));
    const options = this.sessionId ? this.configOptions : this.draftOptions();
    for (const option of options) {
      if (option.type !== "select") continue;
      const id = `picker-${option.id}`;
      const testid = option.id === "model" ? "model-picker" : option.id === "mode" ? "mode-picker" : `config-${option.id}`;
      const select = h("select", { id, testid, title: option.description || null }, selectOptions(option.options || []));
      select.value = option.currentValue;
      select.addEventListener("change", () => this.setOption(option.id, select.value));
      box.append(h("label", { class: "picker", for: id }, h("span", { class: "picker-label", text: option.name || option.id }), select));
    }
  }

  async setOption(configId, value) {
    if (!this.sessionId) {
      if (configId === "model") this.draftModel = value;
      return;
    }
    try {
      const result = await this.link.request("session/set_config_option", { sessionId: this.sessionId, configId, value });
      this.setConfig(result.configOptions || this.configOptions);
    } catch (error) {
      this.toast(error.message, true);
      this.renderPickers();
    }
  }

  openPath(path) {
    this.showTab("files");
    this.files.open(path).catch((error) => this.toast(error.message, true));
  }
}

const app = new App();
app.showTab("chat");
app.connect();
