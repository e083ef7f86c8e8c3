// A server started with --api-token: the client's Authorization header, and 401s.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { TetherClient, TetherError, UnauthorizedError } from "../dist/index.js";
import { serverSkipReason, startServer } from "./helpers.mjs";

const skip = serverSkipReason();

describe("against tether dev --api-token", { skip }, () => {
  let server;

  before(async () => {
    server = await startServer({ apiToken: "T-correct" });
  });

  after(async () => {
    await server?.stop();
  });

  test("a wrong API token → UnauthorizedError (401)", async () => {
    const wrong = new TetherClient({ baseUrl: server.baseUrl, apiToken: "T-wrong" });
    for (const call of [() => wrong.listRuns(), () => wrong.startRun("approval", { order_id: "o" }), () => wrong.resumeHook("t", {}, { retry: false })]) {
      await assert.rejects(call(), (e) => {
        assert.ok(e instanceof UnauthorizedError, `got ${e}`);
        assert.ok(e instanceof TetherError);
        assert.equal(e.status, 401);
        assert.equal(e.code, "unauthorized");
        return true;
      });
    }
    const none = new TetherClient({ baseUrl: server.baseUrl });
    await assert.rejects(none.workflows(), UnauthorizedError);
  });

  test("the right API token works; webhook URLs need none", async () => {
    const tether = new TetherClient({ baseUrl: server.baseUrl, apiToken: "T-correct" });
    const runId = await tether.startRun("webhook_echo", { mode: "static" });
    const [hook] = await tether.hooks(runId);
    const res = await fetch(tether.webhookUrl(hook.token), { method: "POST", body: "{}" });
    assert.equal(res.status, 202);
    await res.arrayBuffer();
    const run = await tether.getRun(runId, { wait: 5000 });
    assert.equal(run.status, "completed");
  });

  test("a resume link made with the API token is used without it", async () => {
    const seen = [];
    const tether = new TetherClient({
      baseUrl: server.baseUrl,
      apiToken: "T-correct",
      fetch: (url, init) => {
        seen.push({ url, authorization: init.headers.authorization });
        return fetch(url, init);
      },
    });
    const runId = await tether.startRun("approval", { order_id: "o-auth-link" });
    const [hook] = await tether.hooks(runId);
    const link = await tether.createResumeLink(hook.token, { approved: true, comment: "ok" });
    assert.deepEqual(await tether.useResumeLink(link.url), { run_id: runId });
    const used = seen.find((r) => r.url === link.url);
    assert.ok(used, "the link was posted");
    assert.equal(used.authorization, undefined, "no API token on the link");
    assert.equal(seen.find((r) => r.url.endsWith("/links")).authorization, "Bearer T-correct");
    assert.equal((await tether.getRun(runId, { wait: 5000 })).status, "completed");
  });
});
