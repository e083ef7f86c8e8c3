// Tether web UI: helpers shared by the pages (API calls, DOM building, the live stream).
// Everything from the server is put on the page with textContent, never as HTML.
"use strict";

const Tether = (() => {
  const TOKEN_KEY = "tether.apiToken";

  // Where the server's routes start: the address this script was loaded from, less
  // `/ui/common.js`. Tether may be mounted under a path prefix of another app, so every URL
  // the pages use is built on it, never on the site's root.
  const BASE = (() => {
    const src = document.currentScript && document.currentScript.src;
    return src ? src.replace(/\/ui\/common\.js(?:[?#].*)?$/, "") : location.origin;
  })();

  /** The address of a server route (`path` starts with `/`). */
  function url(path) {
    return BASE + path;
  }

  // Unexpected script errors are kept (the browser test prints them when it fails).
  window.__tetherErrors = [];
  window.addEventListener("error", (ev) => window.__tetherErrors.push(String(ev.message)));
  window.addEventListener("unhandledrejection", (ev) =>
    window.__tetherErrors.push(String(ev.reason && ev.reason.stack || ev.reason)));

  function token() {
    try {
      return localStorage.getItem(TOKEN_KEY) || "";
    } catch (_) {
      return "";
    }
  }

  function setToken(value) {
    try {
      if (value) localStorage.setItem(TOKEN_KEY, value);
      else localStorage.removeItem(TOKEN_KEY);
    } catch (_) {
      // Storage disabled: the token lasts for this page only.
    }
  }

  /** An error answer of the API: HTTP status, code and message. */
  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
    describe() {
      return this.code ? `${this.code}: ${this.message}` : this.message;
    }
  }

  /** What went wrong, for a person: an API error's code and message, or any error's message. */
  function describe(e) {
    if (e instanceof ApiError) return e.describe();
    return e && e.message ? e.message : String(e);
  }

  function authHeaders(extra) {
    const headers = Object.assign({}, extra || {});
    const t = token();
    if (t) headers["Authorization"] = "Bearer " + t;
    return headers;
  }

  const authListeners = [];
  function onAuthProblem(fn) {
    authListeners.push(fn);
  }
  function authProblem(message) {
    for (const fn of authListeners) fn(message);
  }

  /**
   * Call the JSON API. `body` is sent as is when it is a string (so the server, not the
   * browser, judges whether it is JSON), else as JSON. Resolves with the parsed answer;
   * rejects with an ApiError.
   */
  async function api(method, path, body, headers) {
    const init = { method, headers: authHeaders(headers), cache: "no-store" };
    if (body !== undefined) {
      init.body = typeof body === "string" ? body : JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    let resp;
    try {
      resp = await fetch(url(path), init);
    } catch (e) {
      throw new ApiError(0, "network", "the server cannot be reached (" + e.message + ")");
    }
    const text = await resp.text();
    let value = null;
    if (text) {
      try {
        value = JSON.parse(text);
      } catch (_) {
        value = null;
      }
    }
    if (!resp.ok) {
      const err = value && value.error ? value.error : {};
      const e = new ApiError(resp.status, err.code || "http_" + resp.status,
        err.message || resp.statusText || "request failed");
      if (resp.status === 401) authProblem(e.describe());
      throw e;
    }
    return value;
  }

  /**
   * Build an element. `props`: {class, text, title, href, id, type, value, on: {event: fn}};
   * children: nodes or strings (strings become text nodes).
   */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    const p = props || {};
    if (p.class) node.className = p.class;
    if (p.text !== undefined && p.text !== null) node.textContent = String(p.text);
    for (const key of ["title", "id", "type", "value"]) {
      if (p[key] !== undefined) node[key] = p[key];
    }
    if (p.href !== undefined) node.setAttribute("href", p.href);
    if (p.on) for (const [ev, fn] of Object.entries(p.on)) node.addEventListener(ev, fn);
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function pretty(value) {
    if (value === undefined) return "";
    return JSON.stringify(value, null, 2);
  }

  function compact(value, max) {
    const s = JSON.stringify(value);
    if (s === undefined) return "";
    return max && s.length > max ? s.slice(0, max) + "…" : s;
  }

  /** An RFC 3339 time as a short local time (the full value in the title). */
  function time(rfc3339) {
    if (!rfc3339) return el("span", { text: "" });
    const d = new Date(rfc3339);
    const text = isNaN(d.getTime()) ? String(rfc3339) : d.toLocaleString();
    return el("time", { text, title: String(rfc3339) });
  }

  const STATUSES = ["pending", "running", "suspended", "completed", "failed", "cancelled"];

  /** A status badge; unknown statuses are shown as text with a neutral style. */
  function badge(status, node) {
    const s = String(status || "");
    const target = node || el("span");
    target.textContent = s;
    target.className = "status" + (STATUSES.includes(s) || s === "blocked" ? " status-" + s : "");
    return target;
  }

  function runUrl(runId) {
    return url("/runs/" + encodeURIComponent(runId));
  }

  function show(node, text) {
    node.textContent = text;
    node.hidden = !text;
  }

  /** The header's token field and the banner shown when the server wants a token. */
  function setupTokenBar(onChange) {
    const form = document.getElementById("token-form");
    const input = document.getElementById("api-token");
    const banner = document.getElementById("auth-banner");
    input.value = token();
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      setToken(input.value.trim());
      show(banner, "");
      onChange();
    });
    onAuthProblem((message) => {
      show(banner, "This server needs an API token (" + message +
        "). Enter it in the field above; it is kept in this browser only.");
    });
  }

  /**
   * Follow a server-sent event stream with fetch (so the Authorization header goes along),
   * reconnecting after errors. `onEvent(name, data)` gets each event; `onState(live)` hears
   * whether the stream is connected. Returns {close()}.
   */
  function follow(path, onEvent, onState) {
    let stopped = false;
    let controller = null;
    let delay = 500;
    let timer = null;
    let generation = 0;

    async function connect() {
      if (stopped) return;
      const mine = ++generation;
      controller = new AbortController();
      try {
        const resp = await fetch(url(path), {
          headers: authHeaders({ Accept: "text/event-stream" }),
          cache: "no-store",
          signal: controller.signal,
        });
        if (!resp.ok || !resp.body) {
          const text = await resp.text().catch(() => "");
          let message = resp.statusText;
          try {
            message = JSON.parse(text).error.message;
          } catch (_) { /* not our JSON */ }
          if (resp.status === 401) authProblem(message);
          throw new ApiError(resp.status, "stream", message);
        }
        onState(true);
        delay = 500;
        await read(resp.body.getReader());
      } catch (e) {
        if (stopped || mine !== generation) return;
        if (e instanceof ApiError && (e.status === 404 || e.status === 401)) {
          // Nothing to follow, or not allowed to: wait for a new token (restart()).
          onState(false, e.status === 401 ? "API token needed" : e.message);
          return;
        }
      }
      if (stopped || mine !== generation) return;
      onState(false);
      timer = setTimeout(connect, delay);
      delay = Math.min(delay * 2, 10000);
    }

    async function read(reader) {
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          dispatch(block);
        }
      }
    }

    function dispatch(block) {
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (!line || line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? "" : line.slice(colon + 1);
        if (val.startsWith(" ")) val = val.slice(1);
        if (field === "event") name = val;
        else if (field === "data") data.push(val);
      }
      if (!data.length && name === "message") return;
      let parsed = null;
      try {
        parsed = JSON.parse(data.join("\n"));
      } catch (_) {
        parsed = null;
      }
      onEvent(name, parsed);
    }

    // A page left (or frozen in the back/forward cache) must give its connection back: the
    // browser allows only six per server, and each open page holds one for its stream. A
    // hidden tab lets go of it too, and follows again (reading everything) when shown.
    let paused = false;
    window.addEventListener("pagehide", () => handle.close());
    window.addEventListener("pageshow", (ev) => {
      if (ev.persisted) handle.restart();
    });
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden" && !stopped) {
        paused = true;
        handle.close();
        onState(false, "paused while hidden");
      } else if (document.visibilityState === "visible" && paused) {
        paused = false;
        handle.restart();
      }
    });

    connect();
    const handle = {
      close() {
        stopped = true;
        if (timer) clearTimeout(timer);
        if (controller) controller.abort();
      },
      restart() {
        if (timer) clearTimeout(timer);
        generation++; // the stream being aborted must not schedule a reconnect
        if (controller) controller.abort();
        stopped = false;
        delay = 500;
        setTimeout(connect, 0);
      },
    };
    return handle;
  }

  /** The "live" marker in the header. */
  function liveState(live, message) {
    const node = document.getElementById("live");
    node.textContent = live ? "live" : message ? "not live: " + message : "reconnecting…";
    node.className = "live " + (live ? "on" : "off");
  }

  /**
   * Run `load` now and again whenever `kick()` is called, never twice at once: kicks during a
   * load make one more load after it.
   */
  function serial(load) {
    let running = false;
    let again = false;
    async function kick() {
      if (running) {
        again = true;
        return;
      }
      running = true;
      try {
        do {
          again = false;
          await load();
        } while (again);
      } finally {
        running = false;
      }
    }
    return kick;
  }

  return {
    url,
    ApiError, api, describe, el, clear, pretty, compact, time, badge, runUrl, show, setupTokenBar,
    follow, liveState, serial, STATUSES,
  };
})();
