// Starts a real `tether dev` for the tests: the binary is $TETHER_BIN.
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

export const TETHER_BIN = process.env.TETHER_BIN;

/**
 * Whether this runs under CI: CI set to anything but empty, "0" or "false" (the rule of every
 * suite of the repository, crates/tether-test-env).
 */
export function underCi() {
  const ci = (process.env.CI ?? "").trim().toLowerCase();
  return !["", "0", "false"].includes(ci);
}

/**
 * Why the server tests cannot run here, or undefined when they can. Without TETHER_BIN they are
 * skipped (node --test counts them as skipped) with this message, except under CI (underCi),
 * where that is a failure.
 */
export function serverSkipReason() {
  if (TETHER_BIN) return undefined;
  const msg =
    "TETHER_BIN is not set: server tests skipped (set it to a built `tether`, e.g. target/debug/tether)";
  if (underCi()) throw new Error(msg.replace("skipped", "cannot run on CI"));
  console.log(msg);
  return msg;
}

/**
 * `tether dev --addr 127.0.0.1:0 --db sqlite://<tmp>/t.db [--api-token T]`; resolves once it
 * printed `tether listening on http://127.0.0.1:PORT`. `stop()` kills it and removes the tmp dir.
 */
export async function startServer({ apiToken } = {}) {
  const dir = await mkdtemp(join(tmpdir(), "tether-ts-client-"));
  const args = ["dev", "--addr", "127.0.0.1:0", "--db", `sqlite://${join(dir, "t.db")}`];
  if (apiToken !== undefined) args.push("--api-token", apiToken);
  const env = { ...process.env };
  delete env.TETHER_API_TOKEN;
  const child = spawn(TETHER_BIN, args, { stdio: ["ignore", "pipe", "pipe"], env });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d) => {
    stderr = (stderr + d).slice(-8000);
  });
  const exited = new Promise((resolve) => child.once("exit", (code, sig) => resolve({ code, sig })));

  const lines = createInterface({ input: child.stdout });
  const first = await Promise.race([
    new Promise((resolve) => lines.once("line", resolve)),
    exited.then(({ code, sig }) => {
      throw new Error(`tether dev exited (${code ?? sig}) before listening:\n${stderr}`);
    }),
    new Promise((_, reject) =>
      setTimeout(() => reject(new Error(`tether dev did not print its address in 30 s:\n${stderr}`)), 30_000).unref(),
    ),
  ]);
  // Keep draining stdout so the server never blocks on a full pipe.
  lines.on("line", () => {});
  const m = /^tether listening on (http:\/\/\S+)$/.exec(String(first).trim());
  if (!m) {
    child.kill("SIGKILL");
    throw new Error(`unexpected first line from tether dev: ${first}`);
  }

  return {
    baseUrl: m[1],
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(t);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A local TCP port nobody listens on (bound, then closed). */
export async function closedPort() {
  const srv = createServer();
  await new Promise((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** Poll `fn` until it returns a truthy value (or throw after `ms`). */
export async function eventually(fn, ms = 5000, what = "condition") {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * The `METHOD /path` of `requests` ([method, concrete encoded path] pairs) that no path template
 * of the OpenAPI document `doc` (with that method) matches; `{param}` matches one segment.
 */
export function missingFromOpenApi(doc, requests) {
  const templates = Object.entries(doc.paths ?? {}).map(([path, item]) => ({
    methods: new Set(Object.keys(item ?? {}).map((m) => m.toUpperCase())),
    re: new RegExp(
      `^${path
        .split(/(\{[^}]+\})/)
        .map((part) => (/^\{[^}]+\}$/.test(part) ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
        .join("")}$`,
    ),
  }));
  const missing = [];
  for (const [method, path] of requests) {
    const key = `${method} ${path}`;
    if (missing.includes(key)) continue;
    if (!templates.some((t) => t.methods.has(method) && t.re.test(path))) missing.push(key);
  }
  return missing;
}
