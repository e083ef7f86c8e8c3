// Tether web UI: the runs list (filters, pages, live), the schedules with their next tick,
// and a form to start a run.
"use strict";

(() => {
  const { api, el, clear, time, badge, runUrl, show } = Tether;
  const PAGE_SIZE = 25;
  // The API caps a listing at 1,000 runs; pages reach back that far.
  const MAX_LISTED = 1000;

  const statusSel = document.getElementById("filter-status");
  const workflowSel = document.getElementById("filter-workflow");
  const body = document.getElementById("runs-body");
  const empty = document.getElementById("runs-empty");
  const listError = document.getElementById("list-error");
  const prev = document.getElementById("page-prev");
  const next = document.getElementById("page-next");
  const pageLabel = document.getElementById("page-label");

  const params = new URLSearchParams(location.search);
  const view = {
    status: params.get("status") || "",
    workflow: params.get("workflow") || "",
    page: Math.max(0, parseInt(params.get("page") || "0", 10) || 0),
  };

  function syncAddress() {
    const q = new URLSearchParams();
    if (view.status) q.set("status", view.status);
    if (view.workflow) q.set("workflow", view.workflow);
    if (view.page) q.set("page", String(view.page));
    const qs = q.toString();
    history.replaceState(null, "", Tether.url(qs ? "/?" + qs : "/"));
  }

  function row(run) {
    return el("tr", { class: "run-row" },
      el("td", {}, el("a", { href: runUrl(run.run_id), class: "run-link" },
        el("code", { text: run.run_id }))),
      el("td", { text: run.workflow }),
      el("td", { text: run.queue || "default" }),
      el("td", {}, badge(run.error && !Tether.STATUSES.slice(3).includes(run.status)
        ? "blocked" : run.status)),
      el("td", {}, time(run.created_at)),
      el("td", {}, time(run.updated_at)));
  }

  // The API has no cursor: page N asks for the first (N+1) pages plus one row (to know
  // whether there is a next page) and shows the last page of them.
  const load = Tether.serial(async () => {
    const q = new URLSearchParams();
    if (view.status) q.set("status", view.status);
    if (view.workflow) q.set("workflow", view.workflow);
    const want = Math.min((view.page + 1) * PAGE_SIZE + 1, MAX_LISTED);
    q.set("limit", String(want));
    let runs;
    try {
      runs = (await api("GET", "/v1/runs?" + q.toString())).runs || [];
      show(listError, "");
    } catch (e) {
      show(listError, "Could not list runs: " + Tether.describe(e));
      return;
    }
    const start = view.page * PAGE_SIZE;
    const shown = runs.slice(start, start + PAGE_SIZE);
    clear(body);
    for (const run of shown) body.append(row(run));
    empty.hidden = shown.length > 0;
    prev.disabled = view.page === 0;
    next.disabled = runs.length <= start + PAGE_SIZE || (view.page + 2) * PAGE_SIZE > MAX_LISTED;
    pageLabel.textContent = shown.length
      ? `runs ${start + 1}–${start + shown.length}` : `page ${view.page + 1}`;
  });

  // Schedules: every one, by id, with its next tick (reloaded with the runs: a tick makes one).
  const schedulesBody = document.getElementById("schedules-body");
  const schedulesEmpty = document.getElementById("schedules-empty");
  const schedulesError = document.getElementById("schedules-error");

  function scheduleRow(s) {
    const last = s.last_run_id
      ? el("a", { href: runUrl(s.last_run_id), class: "run-link" },
        el("code", { text: s.last_run_id }))
      : el("span", { class: "muted", text: "–" });
    return el("tr", { class: "schedule-row" },
      el("td", {}, el("code", { text: s.id })),
      el("td", { text: s.workflow }),
      el("td", {}, el("code", { text: s.cron + " (" + s.timezone + ")" })),
      el("td", { text: s.paused ? "paused" : "active" }),
      el("td", {}, s.next_tick && !s.paused ? time(s.next_tick)
        : el("span", { class: "muted", text: "–" })),
      el("td", {}, last));
  }

  const loadSchedules = Tether.serial(async () => {
    let schedules;
    try {
      schedules = (await api("GET", "/v1/schedules")).schedules || [];
      show(schedulesError, "");
    } catch (e) {
      show(schedulesError, "Could not list schedules: " + Tether.describe(e));
      return;
    }
    clear(schedulesBody);
    for (const s of schedules) schedulesBody.append(scheduleRow(s));
    schedulesEmpty.hidden = schedules.length > 0;
  });

  let workflowsLoaded = false;
  async function loadWorkflows() {
    if (workflowsLoaded) return;
    const startSel = document.getElementById("start-workflow");
    try {
      const names = (await api("GET", "/v1/workflows")).workflows || [];
      workflowsLoaded = true;
      for (const name of names) {
        workflowSel.append(el("option", { value: name, text: name }));
        startSel.append(el("option", { value: name, text: name }));
      }
      workflowSel.value = view.workflow;
    } catch (e) {
      show(listError, "Could not list workflows: " + Tether.describe(e));
    }
  }

  statusSel.value = view.status;
  statusSel.addEventListener("change", () => {
    view.status = statusSel.value;
    view.page = 0;
    syncAddress();
    load();
  });
  workflowSel.addEventListener("change", () => {
    view.workflow = workflowSel.value;
    view.page = 0;
    syncAddress();
    load();
  });
  prev.addEventListener("click", () => {
    view.page = Math.max(0, view.page - 1);
    syncAddress();
    load();
  });
  next.addEventListener("click", () => {
    view.page += 1;
    syncAddress();
    load();
  });

  document.getElementById("start-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const error = document.getElementById("start-error");
    const workflow = document.getElementById("start-workflow").value;
    const input = document.getElementById("start-input").value;
    let parsed;
    try {
      parsed = JSON.parse(input);
    } catch (e) {
      show(error, "The input is not valid JSON: " + e.message);
      return;
    }
    try {
      const started = await api("POST", "/v1/runs", { workflow, input: parsed });
      show(error, "");
      location.href = runUrl(started.run_id);
    } catch (e) {
      show(error, Tether.describe(e));
    }
  });

  let stream = null;
  Tether.setupTokenBar(() => {
    loadWorkflows();
    load();
    loadSchedules();
    if (stream) stream.restart();
  });
  loadWorkflows();
  load();
  loadSchedules();
  stream = Tether.follow("/v1/runs/stream", (name) => {
    if (name === "ready" || name === "change") {
      load();
      loadSchedules();
    }
  }, Tether.liveState);
})();
