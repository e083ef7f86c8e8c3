// Tests that need no server: error mapping, URL building, retries (with an injected fetch).
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  HookConflictError,
  HookExpiredError,
  HookNotFoundError,
  HookSelfTargetError,
  IdempotencyKeyReusedError,
  InvalidInputError,
  InvalidLinkError,
  InvalidPayloadError,
  InvalidScheduleError,
  LinkExpiredError,
  LinkInvalidError,
  LinkUsedError,
  NetworkError,
  PayloadTooLargeError,
  RunFinishedError,
  RunNotFoundError,
  ScheduleExistsError,
  ScheduleNotFoundError,
  TokenReservedError,
  StorageError,
  TetherClient,
  TetherError,
  UnauthorizedError,
  WorkflowNotFoundError,
  encodePathSegment,
  errorFromResponse,
} from "../dist/index.js";
import { closedPort, missingFromOpenApi } from "./helpers.mjs";

const json = (status, body, headers = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
const apiError = (status, code, message = code) => json(status, { error: { code, message } });

describe("errors", () => {
  test("each API code maps to its class, keeping status, code and message", () => {
    const cases = [
      [404, "hook_not_found", HookNotFoundError],
      [409, "hook_conflict", HookConflictError],
      [400, "invalid_payload", InvalidPayloadError],
      [404, "run_not_found", RunNotFoundError],
      [404, "workflow_not_found", WorkflowNotFoundError],
      [409, "run_finished", RunFinishedError],
      [409, "idempotency_key_reused", IdempotencyKeyReusedError],
      [401, "unauthorized", UnauthorizedError],
      [413, "payload_too_large", PayloadTooLargeError],
      [400, "invalid_input", InvalidInputError],
      [400, "hook_self_target", HookSelfTargetError],
      [410, "hook_expired", HookExpiredError],
      [410, "token_reserved", TokenReservedError],
      [404, "schedule_not_found", ScheduleNotFoundError],
      [409, "schedule_exists", ScheduleExistsError],
      [400, "invalid_schedule", InvalidScheduleError],
      [400, "invalid_link", InvalidLinkError],
      [403, "link_invalid", LinkInvalidError],
      [410, "link_expired", LinkExpiredError],
      [410, "link_used", LinkUsedError],
      [503, "storage_unavailable", StorageError],
      [507, "storage_full", StorageError],
      [503, "storage_read_only", StorageError],
      [503, "storage_something_new", StorageError],
    ];
    for (const [status, code, cls] of cases) {
      const e = errorFromResponse(status, JSON.stringify({ error: { code, message: `m ${code}` } }));
      assert.ok(e instanceof cls, `${code} → ${cls.name}, got ${e.name}`);
      assert.ok(e instanceof TetherError);
      assert.ok(e instanceof Error);
      assert.equal(e.name, cls.name);
      assert.equal(e.status, status);
      assert.equal(e.code, code);
      assert.equal(e.message, `m ${code}`);
    }
  });

  test("unknown codes are plain TetherErrors; non-JSON answers get http_<status>", () => {
    const e = errorFromResponse(400, '{"error":{"code":"brand_new","message":"new"}}');
    assert.equal(e.constructor, TetherError);
    assert.equal(e.code, "brand_new");
    const g = errorFromResponse(502, "upstream down\n");
    assert.equal(g.constructor, TetherError);
    assert.equal(g.code, "http_502");
    assert.match(g.message, /upstream down/);
    const u = errorFromResponse(401, "");
    assert.ok(u instanceof UnauthorizedError);
    // A code named like an Object.prototype member is still just unknown.
    assert.equal(errorFromResponse(400, '{"error":{"code":"constructor","message":"x"}}').constructor, TetherError);
  });

  test("NetworkError is a TetherError with status 0 and code network_error", () => {
    const e = new NetworkError("boom", { attempts: 3 });
    assert.ok(e instanceof TetherError);
    assert.equal(e.status, 0);
    assert.equal(e.code, "network_error");
    assert.equal(e.attempts, 3);
    assert.equal(e.name, "NetworkError");
  });
});

describe("urls", () => {
  test("path segments are percent-encoded like the Rust client", () => {
    assert.equal(encodePathSegment("Az09_.~-"), "Az09_.~-");
    assert.equal(encodePathSegment("slack_messages:C1"), "slack_messages%3AC1");
    assert.equal(encodePathSegment("a b/c?d#e%f"), "a%20b%2Fc%3Fd%23e%25f");
    assert.equal(encodePathSegment("a/é"), "a%2F%C3%A9");
    assert.equal(encodePathSegment("it's (*)!"), "it%27s%20%28%2A%29%21");
    assert.equal(encodePathSegment(".."), "%2E%2E");
    assert.equal(encodePathSegment("."), "%2E");
  });

  test("webhookUrl and request URLs: trailing slashes dropped, tokens encoded", async () => {
    const seen = [];
    const client = new TetherClient({
      baseUrl: "http://h:1/prefix//",
      fetch: async (url, init) => {
        seen.push([init.method, url]);
        return json(200, []);
      },
    });
    assert.equal(client.baseUrl, "http://h:1/prefix");
    assert.equal(client.webhookUrl("a/b c"), "http://h:1/prefix/.well-known/workflow/v1/webhook/a%2Fb%20c");
    await client.hooks("r/1");
    await client.events("..");
    assert.deepEqual(seen, [
      ["GET", "http://h:1/prefix/v1/runs/r%2F1/hooks"],
      ["GET", "http://h:1/prefix/v1/runs/%2E%2E/events"],
    ]);
  });

  test("query parameters: wait_ms and list filters, absent ones omitted", async () => {
    const seen = [];
    const client = new TetherClient({
      baseUrl: "http://h:1",
      fetch: async (url) => {
        seen.push(url);
        return url.includes("/v1/runs?") || url.endsWith("/v1/runs") ? json(200, { runs: [] }) : json(200, { run_id: "r" });
      },
    });
    await client.getRun("r", { wait: 5000 });
    await client.getRun("r");
    await client.listRuns({ status: "suspended", workflow: "a b", limit: 3 });
    await client.listRuns();
    assert.deepEqual(seen, [
      "http://h:1/v1/runs/r?wait_ms=5000",
      "http://h:1/v1/runs/r",
      "http://h:1/v1/runs?status=suspended&workflow=a+b&limit=3",
      "http://h:1/v1/runs",
    ]);
  });

  test("the API token goes in Authorization and never into JSON", async () => {
    let auth;
    const client = new TetherClient({
      baseUrl: "http://h:1",
      apiToken: "s3cret",
      fetch: async (_url, init) => {
        auth = init.headers.authorization;
        return json(200, { workflows: ["a"] });
      },
    });
    assert.deepEqual(await client.workflows(), ["a"]);
    assert.equal(auth, "Bearer s3cret");
    assert.ok(!JSON.stringify(client).includes("s3cret"));
  });
});

describe("retries", () => {
  const fast = { attempts: 3, minDelayMs: 1, maxDelayMs: 5 };

  test("resumeHook against a closed port: retried N times, then NetworkError", async () => {
    const port = await closedPort();
    const keys = [];
    const client = new TetherClient({
      baseUrl: `http://127.0.0.1:${port}`,
      retry: fast,
      fetch: (url, init) => {
        keys.push(init.headers["Idempotency-Key"]);
        return fetch(url, init);
      },
    });
    await assert.rejects(client.resumeHook("tok", { a: 1 }), (e) => {
      assert.ok(e instanceof NetworkError, `got ${e}`);
      assert.equal(e.attempts, 3);
      assert.equal(e.status, 0);
      assert.match(e.message, /ECONNREFUSED|fetch failed|connect/i);
      return true;
    });
    assert.equal(keys.length, 3);
    assert.equal(new Set(keys).size, 1, "every attempt carries the same generated Idempotency-Key");
    assert.match(keys[0], /^[0-9a-f-]{32,36}$/);
  });

  test("a generated key is new for each call; a given key is used as is", async () => {
    const keys = [];
    const client = new TetherClient({
      baseUrl: "http://h:1",
      fetch: async (_url, init) => {
        keys.push(init.headers["Idempotency-Key"]);
        return json(202, { run_id: "r1" });
      },
    });
    assert.equal(await client.resumeHook("t", {}), "r1");
    assert.equal(await client.resumeHook("t", {}), "r1");
    assert.equal(await client.resumeHook("t", {}, { idempotencyKey: "mine" }), "r1");
    assert.notEqual(keys[0], keys[1]);
    assert.equal(keys[2], "mine");
  });

  test("503 answers are retried with the same key; other errors are not", async () => {
    const calls = [];
    let n = 0;
    const client = new TetherClient({
      baseUrl: "http://h:1",
      retry: fast,
      fetch: async (_url, init) => {
        calls.push(init.headers["Idempotency-Key"]);
        n += 1;
        return n === 1 ? apiError(503, "storage_unavailable") : json(202, { run_id: "r9" });
      },
    });
    assert.equal(await client.resumeHook("t", { x: 1 }, { idempotencyKey: "k" }), "r9");
    assert.deepEqual(calls, ["k", "k"]);

    let m = 0;
    const noRetry = new TetherClient({
      baseUrl: "http://h:1",
      retry: fast,
      fetch: async () => {
        m += 1;
        return apiError(400, "invalid_payload", "bad");
      },
    });
    await assert.rejects(noRetry.resumeHook("t", {}), InvalidPayloadError);
    assert.equal(m, 1);
  });

  test("503 every time: the last StorageError is thrown after the attempts", async () => {
    let n = 0;
    const client = new TetherClient({
      baseUrl: "http://h:1",
      retry: fast,
      fetch: async () => {
        n += 1;
        return apiError(503, "storage_unavailable", "db down");
      },
    });
    await assert.rejects(client.resumeHook("t", {}), StorageError);
    assert.equal(n, 3);
  });

  test("retry: false, and calls that are not idempotent, are sent once", async () => {
    let n = 0;
    const failing = async () => {
      n += 1;
      throw new TypeError("fetch failed", { cause: new Error("connect ECONNREFUSED") });
    };
    const client = new TetherClient({ baseUrl: "http://h:1", retry: fast, fetch: failing });
    await assert.rejects(client.resumeHook("t", {}, { retry: false }), NetworkError);
    assert.equal(n, 1);
    n = 0;
    await assert.rejects(
      client.signal("s", {}, { retry: false }),
      (e) => e instanceof NetworkError && /ECONNREFUSED/.test(e.message),
    );
    assert.equal(n, 1);
    n = 0;
    await assert.rejects(client.cancelRun("r"), NetworkError);
    assert.equal(n, 1);
    // A start always carries an Idempotency-Key, so it is retried (the server answers a
    // repeat with the run the first attempt made).
    n = 0;
    await assert.rejects(client.startRun("w", {}), NetworkError);
    assert.ok(n > 1, `a start is retried (sent ${n} times)`);
    n = 0;
    await assert.rejects(client.startRun("w", {}, { retry: false }), NetworkError);
    assert.equal(n, 1);
    // So does a signal (the server answers a repeat with where the first one went).
    n = 0;
    await assert.rejects(client.signal("s", {}), NetworkError);
    assert.ok(n > 1, `a signal is retried (sent ${n} times)`);
  });

  test("a signal carries the given key, or a new one per call", async () => {
    const keys = [];
    const client = new TetherClient({
      baseUrl: "http://h:1",
      fetch: async (_url, init) => {
        keys.push(init.headers["Idempotency-Key"]);
        return json(202, { signal_id: "s", delivered_to: "r1" });
      },
    });
    assert.deepEqual(await client.signal("s", {}, { idempotencyKey: "mine" }), { signalId: "s", deliveredTo: "r1" });
    await client.signal("s", {});
    await client.signal("s", {});
    assert.equal(keys[0], "mine");
    assert.equal(new Set(keys).size, 3);
  });

  test("an aborted call rejects with the abort reason and is not retried", async () => {
    let n = 0;
    const ac = new AbortController();
    const client = new TetherClient({
      baseUrl: "http://h:1",
      retry: fast,
      fetch: async (_url, init) => {
        n += 1;
        ac.abort(new Error("stop"));
        throw init.signal.reason;
      },
    });
    await assert.rejects(client.resumeHook("t", {}, { signal: ac.signal }), /stop/);
    assert.equal(n, 1);
  });
});

describe("requests of the newer endpoints", () => {
  /** A client whose fetch records [method, url, headers, body] and answers `answer(url, init)`. */
  const recording = (answer, extra = {}) => {
    const seen = [];
    const client = new TetherClient({
      baseUrl: "http://h:1/p",
      apiToken: "s3cret",
      headers: { "x-proxy-auth": "p4ss" },
      ...extra,
      fetch: async (url, init) => {
        seen.push({ method: init.method, url, headers: init.headers, body: init.body === undefined ? undefined : JSON.parse(init.body) });
        return answer(url, init);
      },
    });
    return { client, seen };
  };
  const SCHEDULE = {
    id: "s/1", workflow: "w", cron: "* * * * *", timezone: "UTC", input: {}, overlap: "skip", catch_up: "one",
    paused: false, next_tick: null, next_tick_ms: null, last_run_id: null, created_at: "t", updated_at: "t",
  };

  test("startRun sends queue; children reads {children}", async () => {
    const { client, seen } = recording((url) =>
      url.endsWith("/children") ? json(200, { children: [{ run_id: "r.c1", parent_run_id: "r" }] }) : json(202, { run_id: "r" }),
    );
    assert.equal(await client.startRun("w", { a: 1 }, { queue: "q1", runId: "r" }), "r");
    assert.deepEqual(seen[0].body, { workflow: "w", input: { a: 1 }, run_id: "r", queue: "q1" });
    await client.startRun("w", {});
    assert.deepEqual(seen[1].body, { workflow: "w", input: {} }, "no queue unless given");
    assert.deepEqual(await client.children("r/x"), [{ run_id: "r.c1", parent_run_id: "r" }]);
    assert.equal(seen[2].url, "http://h:1/p/v1/runs/r%2Fx/children");
    assert.equal(seen[2].method, "GET");
  });

  test("schedules: create body in snake_case, paths encoded, DELETE", async () => {
    const { client, seen } = recording((url, init) =>
      init.method === "DELETE"
        ? json(200, { id: "s/1", deleted: true })
        : url.endsWith("/v1/schedules") && init.method === "GET"
          ? json(200, { schedules: [SCHEDULE] })
          : json(init.method === "POST" && url.endsWith("/v1/schedules") ? 201 : 200, SCHEDULE),
    );
    const made = await client.createSchedule({ id: "s/1", workflow: "w", cron: "* * * * *", catchUp: "skip", overlap: "allow", timezone: "Europe/Paris", input: null });
    assert.deepEqual(made, SCHEDULE);
    assert.deepEqual(seen[0].body, { id: "s/1", workflow: "w", cron: "* * * * *", timezone: "Europe/Paris", input: null, overlap: "allow", catch_up: "skip" });
    await client.createSchedule({ id: "s2", workflow: "w", cron: "* * * * *" });
    assert.deepEqual(seen[1].body, { id: "s2", workflow: "w", cron: "* * * * *" }, "absent options are omitted");
    assert.deepEqual(await client.listSchedules(), [SCHEDULE]);
    await client.getSchedule("s/1");
    await client.pauseSchedule("s/1");
    await client.resumeSchedule("s/1");
    assert.equal(await client.deleteSchedule("s/1"), undefined);
    assert.deepEqual(
      seen.map((r) => `${r.method} ${r.url}`),
      [
        "POST http://h:1/p/v1/schedules",
        "POST http://h:1/p/v1/schedules",
        "GET http://h:1/p/v1/schedules",
        "GET http://h:1/p/v1/schedules/s%2F1",
        "POST http://h:1/p/v1/schedules/s%2F1/pause",
        "POST http://h:1/p/v1/schedules/s%2F1/resume",
        "DELETE http://h:1/p/v1/schedules/s%2F1",
      ],
    );
    await assert.rejects(
      recording(() => apiError(409, "schedule_exists")).client.createSchedule({ id: "s", workflow: "w", cron: "x" }),
      ScheduleExistsError,
    );
  });

  test("createResumeLink: body, encoded token, the answer as sent", async () => {
    const { client, seen } = recording(() => json(201, { url: "http://h:1/p/l/abc.def", expires_at_ms: 42 }));
    const link = await client.createResumeLink("tok:1", { approved: true }, { expiresInMs: 60_000, label: "Approve?", set: "decision" });
    assert.deepEqual(link, { url: "http://h:1/p/l/abc.def", expires_at_ms: 42 });
    assert.equal(seen[0].url, "http://h:1/p/v1/hooks/tok%3A1/links");
    assert.deepEqual(seen[0].body, { payload: { approved: true }, expires_in_ms: 60000, label: "Approve?", set: "decision" });
    assert.equal(seen[0].headers.authorization, "Bearer s3cret");
    await client.createResumeLink("t", { a: 1 });
    assert.deepEqual(seen[1].body, { payload: { a: 1 } });
  });

  test("useResumeLink: POST to the link itself, Accept JSON, without the API token or extra headers", async () => {
    const { client, seen } = recording(() => json(200, { run_id: "r1" }));
    assert.deepEqual(await client.useResumeLink("https://other.example/l/abc.def"), { run_id: "r1" });
    assert.equal(seen.length, 1);
    const [req] = seen;
    assert.equal(req.method, "POST");
    assert.equal(req.url, "https://other.example/l/abc.def");
    assert.equal(req.body, undefined);
    assert.equal(req.headers.accept, "application/json");
    const names = Object.keys(req.headers).map((h) => h.toLowerCase());
    assert.ok(!names.includes("authorization"), `no Authorization: ${names}`);
    assert.ok(!names.includes("x-proxy-auth"), `no extra client headers: ${names}`);
    assert.ok(!JSON.stringify(req.headers).includes("s3cret"));
    await assert.rejects(client.useResumeLink("/l/abc"), TypeError);
    await assert.rejects(client.useResumeLink("file:///etc/passwd"), TypeError);
  });

  test("useResumeLink maps the link errors and is sent once; a network error does not show the link", async () => {
    for (const [status, code, cls] of [
      [410, "link_used", LinkUsedError],
      [410, "link_expired", LinkExpiredError],
      [403, "link_invalid", LinkInvalidError],
    ]) {
      const { client } = recording(() => apiError(status, code));
      await assert.rejects(client.useResumeLink("http://h:1/l/x"), cls);
    }
    let n = 0;
    const client = new TetherClient({
      baseUrl: "http://h:1",
      retry: { attempts: 3, minDelayMs: 1, maxDelayMs: 2 },
      fetch: async () => {
        n += 1;
        throw new TypeError("fetch failed");
      },
    });
    await assert.rejects(client.useResumeLink("http://h:1/l/secret-link"), (e) => {
      assert.ok(e instanceof NetworkError);
      assert.ok(!e.message.includes("secret-link"), e.message);
      return true;
    });
    assert.equal(n, 1);
  });
});

test("the OpenAPI check matches templated paths and methods", () => {
  const doc = {
    paths: {
      "/v1/runs": { get: {}, post: {} },
      "/v1/runs/{run_id}": { get: {} },
      "/v1/hooks/{token}": { post: {}, parameters: [] },
      "/a.b": { get: {} },
    },
  };
  assert.deepEqual(
    missingFromOpenApi(doc, [
      ["GET", "/v1/runs"],
      ["POST", "/v1/runs"],
      ["GET", "/v1/runs/r%2F1"],
      ["POST", "/v1/runs/r1"],
      ["GET", "/v1/runs/r1/events"],
      ["POST", "/v1/hooks/slack_messages%3AC1"],
      ["GET", "/aXb"],
      ["GET", "/a.b"],
    ]),
    ["POST /v1/runs/r1", "GET /v1/runs/r1/events", "GET /aXb"],
  );
});
