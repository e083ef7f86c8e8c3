// Tether web UI: one run — status, input, output or error, hooks, shared state, the journal
// as one lane per thread, and forms to resume a hook (with fields built from the payload's
// JSON Schema when its definition publishes one), send a signal or cancel. Live.
"use strict";

(() => {
  const { api, el, clear, pretty, compact, time, badge, runUrl, show } = Tether;
  // Entries drawn at most (the newest); a run can have many thousands.
  const MAX_ENTRIES = 500;
  const TERMINAL = ["completed", "failed", "cancelled"];

  const parts = location.pathname.split("/");
  let runId = "";
  try {
    runId = decodeURIComponent(parts[parts.length - 1] || "");
  } catch (_) {
    runId = "";
  }
  const $ = (id) => document.getElementById(id);
  const base = "/v1/runs/" + encodeURIComponent(runId);

  $("run-id").textContent = runId;
  document.title = "Tether — run " + runId;

  function renderRun(run) {
    const blocked = run.error && !TERMINAL.includes(run.status);
    badge(blocked ? "blocked" : run.status, $("run-status"));
    $("run-status").dataset.status = run.status;
    $("run-workflow").textContent = run.workflow;
    $("run-queue").textContent = run.queue || "default";
    clear($("run-created"));
    $("run-created").append(time(run.created_at));
    clear($("run-updated"));
    $("run-updated").append(time(run.updated_at));
    $("run-input").textContent = pretty(run.input);
    $("run-output").textContent = run.output === null || run.output === undefined
      ? (TERMINAL.includes(run.status) ? "(none)" : "(not yet)") : pretty(run.output);
    $("output-card").hidden = Boolean(run.error) && (run.output === null || run.output === undefined);
    $("error-card").hidden = !run.error;
    $("run-error").textContent = run.error ? pretty(run.error) : "";
    $("cancel-submit").disabled = TERMINAL.includes(run.status);
    const parent = run.parent_run_id;
    $("run-parent-label").hidden = !parent;
    $("run-parent").hidden = !parent;
    clear($("run-parent"));
    if (parent) {
      $("run-parent").append(el("a", { href: runUrl(parent), class: "run-link" }, el("code", { text: parent })));
    }
  }

  /** The child runs this run started, each linking to its page. */
  function renderChildren(children) {
    $("children-card").hidden = children.length === 0;
    const body = $("children-body");
    clear(body);
    for (const c of children) {
      body.append(el("tr", {},
        el("td", {}, el("a", { href: runUrl(c.run_id), class: "run-link" }, el("code", { text: c.run_id }))),
        el("td", { text: c.workflow }),
        el("td", {}, badge(c.status)),
        el("td", {}, time(c.updated_at))));
    }
  }

  /** The published payload schema of each hook token shown (see `HookDef::with_schema`). */
  const schemas = new Map();

  /** The fields a schema's form shows: its top-level scalar properties. */
  function schemaFields(schema) {
    if (!schema || schema.type !== "object" || !schema.properties) return [];
    const required = Array.isArray(schema.required) ? schema.required : [];
    const fields = [];
    for (const [name, prop] of Object.entries(schema.properties)) {
      const types = Array.isArray(prop.type) ? prop.type : [prop.type];
      const type = ["boolean", "integer", "number", "string"].find((t) => types.includes(t));
      if (type) fields.push({ name, type, required: required.includes(name), description: prop.description });
    }
    return fields;
  }

  /** The payload typed so far, as an object (fields fill it; other keys are kept). */
  function payloadObject() {
    try {
      const v = JSON.parse($("resume-payload").value || "{}");
      return v && typeof v === "object" && !Array.isArray(v) ? v : {};
    } catch (_) {
      return {};
    }
  }

  /** Read one field of the form: `{ value }`, `{}` when left empty, `{ error }` when invalid. */
  function fieldValue(f) {
    const input = $("field-" + f.name);
    if (f.type === "boolean") return { value: input.checked };
    const text = input.value.trim();
    if (text === "") return {};
    if (f.type === "string") return { value: input.value };
    const n = Number(text);
    if (!Number.isFinite(n) || (f.type === "integer" && !Number.isInteger(n))) {
      return { error: `\`${f.name}\` must be ${f.type === "integer" ? "an integer" : "a number"}.` };
    }
    return { value: n };
  }

  /** Fields → the payload text. */
  function syncPayload(fields) {
    const payload = payloadObject();
    for (const f of fields) {
      const got = fieldValue(f);
      if ("value" in got) payload[f.name] = got.value;
      else delete payload[f.name];
    }
    $("resume-payload").value = JSON.stringify(payload, null, 2);
  }

  /** Show the form of the schema of the token in the resume form, if it publishes one. */
  function renderFields() {
    const box = $("resume-fields");
    const fields = schemaFields(schemas.get($("resume-token").value.trim()));
    for (const node of Array.from(box.querySelectorAll(".field"))) node.remove();
    box.hidden = fields.length === 0;
    box.dataset.fields = JSON.stringify(fields);
    const current = payloadObject();
    for (const f of fields) {
      const attrs = { id: "field-" + f.name, type: f.type === "boolean" ? "checkbox" : (f.type === "string" ? "text" : "number") };
      const input = el("input", attrs);
      input.name = f.name;
      if (f.type === "number") input.step = "any";
      if (f.type === "boolean") input.checked = current[f.name] === true;
      else if (current[f.name] !== undefined) input.value = String(current[f.name]);
      input.addEventListener("input", () => syncPayload(fields));
      input.addEventListener("change", () => syncPayload(fields));
      const label = el("label", { class: "field" },
        `${f.name}${f.required ? " (required)" : ""} `,
        input,
        f.description ? el("span", { class: "muted", text: " " + f.description }) : null);
      box.append(label);
    }
    if (fields.length) syncPayload(fields);
  }

  /**
   * The form's check before sending, against the hook's schema: the payload (the text as
   * typed, which the fields fill) must have every required field with the right type. `null`
   * when it passes, or when the text is not JSON at all (the server's `invalid_json` says so).
   */
  function checkPayload() {
    const schema = schemas.get($("resume-token").value.trim());
    const fields = schemaFields(schema);
    if (!fields.length) return null;
    for (const f of fields) {
      const got = fieldValue(f);
      if (got.error) return "invalid_payload: " + got.error;
    }
    let payload;
    try {
      payload = JSON.parse($("resume-payload").value);
    } catch (_) {
      return null;
    }
    if (!payload || typeof payload !== "object" || Array.isArray(payload)) {
      return "invalid_payload: the payload must be a JSON object.";
    }
    const isType = { boolean: (v) => typeof v === "boolean", string: (v) => typeof v === "string",
      number: (v) => typeof v === "number", integer: (v) => Number.isInteger(v) };
    for (const f of fields) {
      if (!(f.name in payload)) {
        if (f.required) return `invalid_payload: field \`${f.name}\` is required.`;
        continue;
      }
      if (!isType[f.type](payload[f.name])) {
        const what = f.type === "integer" ? "an integer" : "a " + f.type;
        return `invalid_payload: field \`${f.name}\` must be ${what}.`;
      }
    }
    return null;
  }

  /** The payload text → the fields (when it is a JSON object). */
  function fieldsFromPayload() {
    const box = $("resume-fields");
    if (box.hidden) return;
    let payload;
    try {
      payload = JSON.parse($("resume-payload").value);
    } catch (_) {
      return;
    }
    if (!payload || typeof payload !== "object") return;
    for (const f of JSON.parse(box.dataset.fields || "[]")) {
      const input = $("field-" + f.name);
      if (!input) continue;
      if (f.type === "boolean") input.checked = payload[f.name] === true;
      else input.value = payload[f.name] === undefined ? "" : String(payload[f.name]);
    }
  }

  function useToken(token) {
    $("resume-token").value = token;
    renderFields();
    $("resume-payload").focus();
  }

  function renderHooks(hooks) {
    const body = $("hooks-body");
    const list = $("hook-tokens");
    clear(body);
    clear(list);
    const before = JSON.stringify(schemas.get($("resume-token").value.trim()) || null);
    schemas.clear();
    for (const h of hooks) {
      if (h.schema) schemas.set(h.token, h.schema);
      body.append(el("tr", { class: "hook-row" },
        el("td", {}, el("code", { text: h.token })),
        el("td", { text: h.kind }),
        el("td", {}, el("code", { text: h.thread === "main" ? "main" : h.thread })),
        el("td", {}, el("pre", { text: compact(h.metadata) })),
        el("td", {}, h.expires_at ? time(h.expires_at) : ""),
        el("td", {}, h.url ? el("code", { text: h.url }) : ""),
        el("td", {}, el("button", {
          type: "button", class: "small", text: "Use",
          on: { click: () => useToken(h.token) },
        }))));
      list.append(el("option", { value: h.token }));
    }
    $("hooks-empty").hidden = hooks.length > 0;
    // Fill the form with the first hook's token, unless the user typed one.
    const input = $("resume-token");
    if (!input.value && hooks.length && !input.dataset.touched) input.value = hooks[0].token;
    // Redrawn only when the schema changes (a live reload must not take the user's focus).
    if (JSON.stringify(schemas.get(input.value.trim()) || null) !== before) renderFields();
  }

  function renderState(state) {
    const body = $("state-body");
    clear(body);
    const keys = Object.keys(state || {}).sort();
    for (const k of keys) {
      body.append(el("tr", {},
        el("td", {}, el("code", { text: k })),
        el("td", {}, el("pre", { text: compact(state[k]) }))));
    }
    $("state-empty").hidden = keys.length > 0;
  }

  const HIDDEN_FIELDS = ["seq", "at_ms", "at", "type", "thread", "thread_workflow"];

  function entryKind(type) {
    if (/^run_(failed|cancelled)$|failed|conflict|cancel/.test(type)) return "kind-bad";
    if (/^run_/.test(type)) return "kind-run";
    if (/^hook_|^signal_/.test(type)) return "kind-hook";
    return "";
  }

  function entry(e) {
    const rest = {};
    for (const [k, v] of Object.entries(e)) if (!HIDDEN_FIELDS.includes(k)) rest[k] = v;
    const summary = compact(rest, 160);
    return el("div", { class: "entry " + entryKind(String(e.type)) },
      el("div", { class: "entry-head" },
        el("span", { class: "entry-seq", text: "#" + e.seq }),
        el("span", { class: "entry-type", text: e.type }),
        el("span", { class: "entry-time" }, time(e.at))),
      summary && summary !== "{}" ? el("div", { class: "entry-summary", text: summary }) : null,
      summary.length > 160 || summary.endsWith("…")
        ? el("details", {}, el("summary", { text: "details" }), el("pre", { text: pretty(rest) }))
        : null);
  }

  /** The journal: a column per thread (main first), a row per entry in commit order. */
  function renderTimeline(events, threads) {
    const box = $("timeline");
    clear(box);
    const lanes = ["main"];
    const info = { main: { workflow: null, status: null } };
    for (const t of threads) {
      if (!lanes.includes(t.run_id)) lanes.push(t.run_id);
      info[t.run_id] = { workflow: t.workflow, status: t.status };
    }
    for (const e of events) {
      const lane = e.thread || "main";
      if (!lanes.includes(lane)) {
        lanes.push(lane);
        info[lane] = { workflow: e.thread_workflow || null, status: null };
      }
    }
    box.style.gridTemplateColumns = `repeat(${lanes.length}, minmax(220px, 1fr))`;
    lanes.forEach((lane, i) => {
      const head = el("div", { class: "lane-head" },
        el("div", { class: "lane-name", text: lane === "main" ? "main thread" : "hook thread" }),
        lane === "main" ? null : el("code", { text: lane }),
        info[lane].workflow ? el("div", { class: "muted", text: info[lane].workflow }) : null,
        info[lane].status ? badge(info[lane].status) : null);
      head.dataset.lane = lane;
      head.style.gridColumn = String(i + 1);
      head.style.gridRow = "1";
      box.append(head);
    });
    const shown = events.slice(-MAX_ENTRIES);
    show($("timeline-note"), events.length > shown.length
      ? `Showing the last ${shown.length} of ${events.length} entries.` : "");
    shown.forEach((e, row) => {
      const node = entry(e);
      node.dataset.lane = e.thread || "main";
      node.style.gridColumn = String(lanes.indexOf(e.thread || "main") + 1);
      node.style.gridRow = String(row + 2);
      box.append(node);
    });
  }

  async function hooksOfNamespace(threads) {
    const main = (await api("GET", base + "/hooks")).map((h) => Object.assign(h, { thread: "main" }));
    const live = threads.filter((t) => !TERMINAL.includes(t.status));
    const more = await Promise.all(live.map((t) =>
      api("GET", "/v1/runs/" + encodeURIComponent(t.run_id) + "/hooks")
        .then((hs) => hs.map((h) => Object.assign(h, { thread: t.run_id })))
        .catch(() => [])));
    return main.concat(...more);
  }

  const load = Tether.serial(async () => {
    try {
      const [run, events, threads, state, family] = await Promise.all([
        api("GET", base),
        api("GET", base + "/events"),
        api("GET", base + "/threads"),
        api("GET", base + "/state"),
        api("GET", base + "/children"),
      ]);
      const hooks = await hooksOfNamespace(threads);
      show($("load-error"), "");
      renderRun(run);
      renderHooks(hooks);
      renderState(state);
      renderTimeline(events, threads);
      renderChildren(family.children);
    } catch (e) {
      show($("load-error"), "Could not load the run: " + Tether.describe(e));
    }
  });

  /** Wire a form: `send()` returns a promise; errors from the server are shown inline. */
  function wire(formId, prefix, send, okText) {
    const error = $(prefix + "-error");
    const ok = $(prefix + "-ok");
    const button = $(prefix + "-submit");
    $(formId).addEventListener("submit", async (ev) => {
      ev.preventDefault();
      show(ok, "");
      show(error, "");
      button.disabled = true;
      try {
        const answer = await send();
        show(ok, okText(answer));
        load();
      } catch (e) {
        show(error, Tether.describe(e));
      } finally {
        button.disabled = false;
      }
    });
  }

  $("resume-payload").addEventListener("input", fieldsFromPayload);

  $("resume-token").addEventListener("input", (ev) => {
    ev.target.dataset.touched = "1";
    renderFields();
  });

  // The payload text goes to the server as typed: its answer (invalid JSON, or a payload the
  // hook's definition refuses) is what the form shows.
  wire("resume-form", "resume", () => {
    const token = $("resume-token").value.trim();
    if (!token) return Promise.reject(new Error("Pick a hook token first."));
    const invalid = checkPayload();
    if (invalid) {
      return Promise.reject(new Error(invalid + " (checked against the hook's schema; nothing was sent)"));
    }
    const key = $("resume-key").value.trim();
    return api("POST", "/v1/hooks/" + encodeURIComponent(token), $("resume-payload").value,
      key ? { "Idempotency-Key": key } : {});
  }, () => "Accepted: the payload is durably stored.");

  wire("signal-form", "signal", () => {
    const id = $("signal-id").value.trim();
    if (!id) return Promise.reject(new Error("Enter a signal id."));
    const key = $("signal-key").value.trim();
    return api("POST", "/v1/signals/" + encodeURIComponent(id), $("signal-payload").value,
      key ? { "Idempotency-Key": key } : {});
  }, (a) => a && a.delivered_to
    ? "Delivered to " + a.delivered_to + "." : "Accepted; kept until a run waits for it.");

  wire("cancel-form", "cancel", () => {
    const reason = $("cancel-reason").value.trim();
    return api("POST", base + "/cancel", reason ? { reason } : undefined);
  }, () => "Cancel requested: the run stops at its next await.");

  let stream = null;
  Tether.setupTokenBar(() => {
    load();
    if (stream) stream.restart();
  });
  load();
  stream = Tether.follow(base + "/stream", (name) => {
    if (name === "ready" || name === "change") load();
  }, Tether.liveState);
})();
