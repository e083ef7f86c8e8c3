/**
 * TypeScript client for Tether's HTTP API (the server of `tether dev` / `tether serve`).
 *
 * No runtime dependencies and no Node-only imports: it uses the global `fetch` (or the one you
 * pass), so it runs on Node 20+, Deno, Bun, browsers and edge runtimes.
 *
 * ```ts
 * import { TetherClient } from "@tether/client";
 *
 * const tether = new TetherClient({ baseUrl: "http://127.0.0.1:8080" });
 * const runId = await tether.startRun("approval", { order_id: "o-1" });
 * const [hook] = await tether.hooks(runId);
 * await tether.resumeHook(hook!.token, { approved: true, comment: "ok" });
 * const run = await tether.getRun(runId, { wait: 5000 });
 * ```
 *
 * @module
 */

import { NetworkError, TetherError, UnexpectedResponseError, errorFromResponse } from "./errors.js";

export * from "./errors.js";

/** Any JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A run's status. */
export type RunStatus = "pending" | "running" | "suspended" | "completed" | "failed" | "cancelled";

/** An error as the API reports it, in a run's `error` field. */
export interface ErrorBody {
  /** Stable machine-readable code. */
  code: string;
  /** Human-readable explanation. */
  message: string;
}

/** A run as the server shows it (field names as the API sends them). */
export interface RunInfo {
  run_id: string;
  workflow: string;
  status: RunStatus | (string & {});
  input: unknown;
  /** The output, once completed (else `null`). */
  output: unknown;
  /** The error, once failed or cancelled (or while blocked by a non-determinism error). */
  error: ErrorBody | null;
  /** RFC 3339, UTC, milliseconds. */
  created_at: string;
  /** RFC 3339, UTC, milliseconds. */
  updated_at: string;
  /** The run that started it as a child run (`ctx.start_child`), else `null` (absent from older servers). */
  parent_run_id?: string | null;
}

/** An active hook. */
export interface HookInfo {
  /** The token that resumes it (a credential when generated). */
  token: string;
  /** `hook` or `webhook`. */
  kind: "hook" | "webhook" | (string & {});
  /** The metadata the workflow attached to it. */
  metadata: unknown;
  /** The JSON Schema of the payloads it takes, when its hook definition publishes one. */
  schema: Record<string, unknown> | null;
  /** RFC 3339, UTC, milliseconds. */
  created_at: string;
  /** A webhook's URL (webhooks only). */
  url?: string;
  /** A webhook's response mode (webhooks only). */
  respond_with?: unknown;
  /** The run holding it: set by {@link TetherClient.getHook}, absent in a run's hook list. */
  run_id?: string;
}

/** One journal entry: `seq`, `at_ms`, `type`, `thread` (`main` or a hook id), and the entry's own fields. */
export interface JournalEvent {
  seq: number;
  at_ms: number;
  at?: string;
  type: string;
  thread?: string;
  [field: string]: unknown;
}

/** How a failing hook thread is retried by the server (intervals in milliseconds; every field optional). */
export interface ThreadRetryPolicy {
  /** Attempts in all, the first included (server default 3). `1` disables retries. */
  maximum_attempts?: number;
  /** Delay before the second attempt (server default 1000). */
  initial_interval_ms?: number;
  /** Growth factor of the delay (server default 2.0). */
  backoff_coefficient?: number;
  /** Upper bound of the delay (server default 60000). */
  maximum_interval_ms?: number;
}

/**
 * How the client retries a request that may safely be repeated (a hook resume or a signal,
 * which always carry an `Idempotency-Key`): after a {@link NetworkError} or a `503` answer, with
 * exponential back-off (and jitter) between attempts.
 */
export interface RetryOptions {
  /** Attempts in all, the first included (default 4). `1` disables retries. */
  attempts?: number;
  /** Delay before the second attempt, in ms (default 200); doubled for each further one. */
  minDelayMs?: number;
  /** Upper bound of a delay, in ms (default 5000). Also caps a server's `Retry-After`. */
  maxDelayMs?: number;
}

/** The `fetch` the client calls. */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/** Options of {@link TetherClient}. */
export interface TetherClientOptions {
  /** The server, e.g. `http://127.0.0.1:8080` (trailing `/` ignored; a path prefix is kept). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiToken>` (for a server started with `--api-token`). */
  apiToken?: string;
  /** The `fetch` to use (default: the global one). */
  fetch?: FetchLike;
  /** Retries of idempotent requests (see {@link RetryOptions}); `false` disables them. */
  retry?: RetryOptions | false;
  /** Extra headers sent with every request. */
  headers?: Record<string, string>;
}

/** Options every call accepts. */
export interface CallOptions {
  /** Aborts the request (and any retry). An aborted call rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Options of {@link TetherClient.startRun}. */
export interface StartRunOptions extends CallOptions {
  /** The run's id, chosen by the caller (1 to 1,024 bytes): a retry never makes a second run. */
  runId?: string;
  /** The `Idempotency-Key`; the server derives the run's id from it (a chosen `runId` wins). */
  idempotencyKey?: string;
  /** Overrides the client's retry options for this call; `false` disables retries. */
  retry?: RetryOptions | false;
}

/** Options of {@link TetherClient.resumeHook}. */
export interface ResumeHookOptions extends CallOptions {
  /**
   * The `Idempotency-Key`: a second resume of the same token with the same key stores nothing
   * new and gets the first answer. When absent the client generates one for this call, so its
   * own retries never deliver twice.
   */
  idempotencyKey?: string;
  /** Overrides the client's retry options for this call; `false` disables retries. */
  retry?: RetryOptions | false;
}

/** Options of {@link TetherClient.signal}. */
export interface SignalOptions extends CallOptions {
  /**
   * The `Idempotency-Key` (scoped to the signal id): a second send with the same key and
   * payload delivers nothing new and gets the first answer (the same `deliveredTo`). When
   * absent the client generates one for this call, so its own retries never deliver twice.
   */
  idempotencyKey?: string;
  /** Overrides the client's retry options for this call; `false` disables retries. */
  retry?: RetryOptions | false;
}

/** Options of {@link TetherClient.getRun}. */
export interface GetRunOptions extends CallOptions {
  /**
   * Long-poll: answer once the run has ended or after this many milliseconds, whichever comes
   * first (`?wait_ms=`; the server caps it, 60 s by default). Then check `status`.
   */
  wait?: number;
}

/** Filters of {@link TetherClient.listRuns}. */
export interface ListRunsOptions extends CallOptions {
  status?: RunStatus | (string & {});
  workflow?: string;
  /** At most this many (server default 100, cap 1000). */
  limit?: number;
}

/** What {@link TetherClient.spawnHook} starts. */
export interface SpawnHookOptions extends CallOptions {
  /** The workflow the hook thread runs (not the run's own workflow on the default queue). */
  workflowName: string;
  /** Its arguments. */
  args?: unknown;
  /** The task queue (default: the run's). */
  taskQueue?: string;
  /** How the thread is retried when it fails (the server's policy, not the client's). */
  retry?: ThreadRetryPolicy;
}

/** The answer of {@link TetherClient.signal}. */
export interface SignalResult {
  /** The signal id. */
  signalId: string;
  /** The waiting run that got it, or `null` when it is kept until one waits. */
  deliveredTo: string | null;
}

/** Whether a run status is final (`completed`, `failed` or `cancelled`). */
export function isTerminal(status: string): boolean {
  return status === "completed" || status === "failed" || status === "cancelled";
}

const DEFAULT_RETRY: Required<RetryOptions> = { attempts: 4, minDelayMs: 200, maxDelayMs: 5000 };

/**
 * Percent-encode `s` as one URL path segment: every byte outside `[A-Za-z0-9_.~-]` becomes
 * `%XX` (as the Rust client does), and a segment that is `.` or `..` has its dots encoded too,
 * so no token can change the path.
 */
export function encodePathSegment(s: string): string {
  const out = encodeURIComponent(s).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return out === "." || out === ".." ? out.replace(/\./g, "%2E") : out;
}

/** A fresh idempotency key (a UUID v4 when `crypto.randomUUID` exists). */
function newIdempotencyKey(): string {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  if (c && typeof c.getRandomValues === "function") {
    const bytes = c.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  throw new Error("@tether/client: no crypto.randomUUID to generate an idempotency key; pass one");
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** `e`'s message and its causes', `: `-separated (undici's own `fetch failed` says little). */
function describe(e: unknown): string {
  const parts: string[] = [];
  let cur: unknown = e;
  for (let i = 0; cur !== undefined && cur !== null && i < 5; i++) {
    const msg =
      cur instanceof Error
        ? cur.message || cur.name
        : typeof cur === "object" && "message" in cur
          ? String((cur as { message: unknown }).message)
          : String(cur);
    const code = typeof cur === "object" && "code" in cur ? (cur as { code: unknown }).code : undefined;
    const piece = typeof code === "string" && !msg.includes(code) ? `${msg} (${code})` : msg;
    if (piece && !parts.some((p) => p.includes(piece))) parts.push(piece);
    cur = typeof cur === "object" && "cause" in cur ? (cur as { cause: unknown }).cause : undefined;
  }
  return parts.join(": ") || "unknown error";
}

interface RequestSpec {
  method: "GET" | "POST";
  path: string;
  query?: Record<string, string | number | undefined>;
  /** Serialized as JSON when present. */
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal | undefined;
  /** Retry on a network error or a 503 (only for requests that are safe to repeat). */
  retry?: Required<RetryOptions> | undefined;
}

/** A client of one Tether server. Each method is one request (plus retries, for resumes). */
export class TetherClient {
  /** The base URL requests go to (without trailing `/`). */
  readonly baseUrl: string;
  readonly #apiToken: string | undefined;
  readonly #fetch: FetchLike;
  readonly #retry: Required<RetryOptions>;
  readonly #headers: Record<string, string>;

  constructor(options: TetherClientOptions) {
    if (!options || typeof options.baseUrl !== "string" || options.baseUrl === "") {
      throw new TypeError("TetherClient: baseUrl is required, e.g. http://127.0.0.1:8080");
    }
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.#apiToken = options.apiToken;
    const f = options.fetch;
    // Called as a plain function: some runtimes refuse a `fetch` detached from `globalThis`.
    this.#fetch = f ?? ((input, init) => globalThis.fetch(input, init));
    this.#retry = TetherClient.#retryOptions(options.retry, DEFAULT_RETRY);
    this.#headers = { ...(options.headers ?? {}) };
  }

  static #retryOptions(
    r: RetryOptions | false | undefined,
    base: Required<RetryOptions>,
  ): Required<RetryOptions> {
    if (r === false) return { ...base, attempts: 1 };
    const merged = { ...base, ...Object.fromEntries(Object.entries(r ?? {}).filter(([, v]) => v !== undefined)) };
    merged.attempts = Math.max(1, Math.floor(merged.attempts));
    return merged;
  }

  /** Never shows the API token. */
  toJSON(): { baseUrl: string; apiToken?: string } {
    return this.#apiToken === undefined ? { baseUrl: this.baseUrl } : { baseUrl: this.baseUrl, apiToken: "<redacted>" };
  }

  // ---- runs ------------------------------------------------------------------------------

  /**
   * Start a run of `workflow` with `input`; resolves to its id once it is durably recorded.
   * Idempotent: with `runId` the run gets that id, with `idempotencyKey` the server derives the
   * id from the key (without either, the client makes a key, so its own retries never start a
   * second run). The same id or key with the same workflow and input resolves to the first
   * run; with another, it rejects with {@link RunExistsError} (`runId`) or
   * {@link IdempotencyKeyReusedError} (key).
   */
  async startRun(workflow: string, input: unknown, options: StartRunOptions = {}): Promise<string> {
    const body: Record<string, unknown> = { workflow, input: input === undefined ? null : input };
    if (options.runId !== undefined) body.run_id = options.runId;
    const answer = await this.#request({
      method: "POST",
      path: "/v1/runs",
      body,
      headers: { "Idempotency-Key": options.idempotencyKey || newIdempotencyKey() },
      signal: options.signal,
      retry: options.retry === undefined ? this.#retry : TetherClient.#retryOptions(options.retry, this.#retry),
    });
    return field(answer, "run_id");
  }

  /** One run as it is now, or (with `wait`) once it has ended or `wait` ms have passed. */
  async getRun(runId: string, options: GetRunOptions = {}): Promise<RunInfo> {
    const wait = options.wait === undefined ? undefined : Math.max(0, Math.round(options.wait));
    return (await this.#request({
      method: "GET",
      path: `/v1/runs/${encodePathSegment(runId)}`,
      query: { wait_ms: wait },
      signal: options.signal,
    })) as RunInfo;
  }

  /**
   * Wait until the run has ended or `timeoutMs` has passed, long-polling (the server caps a
   * single wait; this asks again until the deadline). Returns the run as it is then: check
   * `status` (or {@link isTerminal}).
   */
  async waitForRun(runId: string, timeoutMs: number, options: CallOptions = {}): Promise<RunInfo> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = Math.max(0, deadline - Date.now());
      const run = await this.getRun(runId, { wait: Math.min(left, 60_000), signal: options.signal });
      if (isTerminal(run.status) || Date.now() >= deadline) return run;
    }
  }

  /** Runs, newest first, optionally filtered by `status` and `workflow`, at most `limit`. */
  async listRuns(options: ListRunsOptions = {}): Promise<RunInfo[]> {
    const answer = await this.#request({
      method: "GET",
      path: "/v1/runs",
      query: { status: options.status, workflow: options.workflow, limit: options.limit },
      signal: options.signal,
    });
    const runs = (answer as { runs?: unknown } | null)?.runs;
    if (!Array.isArray(runs)) throw unexpected("a {\"runs\": [...]} object", answer);
    return runs as RunInfo[];
  }

  /** The run's journal (with its hook threads' entries, each tagged `thread`). */
  async events(runId: string, options: CallOptions = {}): Promise<JournalEvent[]> {
    const answer = await this.#request({
      method: "GET",
      path: `/v1/runs/${encodePathSegment(runId)}/events`,
      signal: options.signal,
    });
    if (!Array.isArray(answer)) throw unexpected("an array of journal entries", answer);
    return answer as JournalEvent[];
  }

  /** The run's active hooks, in creation order. */
  async hooks(runId: string, options: CallOptions = {}): Promise<HookInfo[]> {
    const answer = await this.#request({
      method: "GET",
      path: `/v1/runs/${encodePathSegment(runId)}/hooks`,
      signal: options.signal,
    });
    if (!Array.isArray(answer)) throw unexpected("an array of hooks", answer);
    return answer as HookInfo[];
  }

  /**
   * Ask a run to cancel (it ends as `cancelled` at its next await). A finished run is a
   * {@link RunFinishedError}.
   */
  async cancelRun(runId: string, reason?: string, options: CallOptions = {}): Promise<void> {
    await this.#request({
      method: "POST",
      path: `/v1/runs/${encodePathSegment(runId)}/cancel`,
      body: reason === undefined ? {} : { reason },
      signal: options.signal,
    });
  }

  /** The shared state of the run's namespace. */
  async state(runId: string, options: CallOptions = {}): Promise<Record<string, unknown>> {
    const answer = await this.#request({
      method: "GET",
      path: `/v1/runs/${encodePathSegment(runId)}/state`,
      signal: options.signal,
    });
    if (typeof answer !== "object" || answer === null || Array.isArray(answer)) {
      throw unexpected("a JSON object", answer);
    }
    return answer as Record<string, unknown>;
  }

  /**
   * Start a hook thread running `workflowName` (with `args`) inside the running job `runId`;
   * resolves to its hook id. Unknown run: {@link RunNotFoundError}; finished run:
   * {@link RunFinishedError}; the run's own workflow: {@link HookSelfTargetError}.
   */
  async spawnHook(runId: string, options: SpawnHookOptions): Promise<string> {
    const body: Record<string, unknown> = {
      workflow_name: options.workflowName,
      args: options.args === undefined ? null : options.args,
    };
    if (options.taskQueue !== undefined) body.task_queue = options.taskQueue;
    if (options.retry !== undefined) body.retry = options.retry;
    const answer = await this.#request({
      method: "POST",
      path: `/v1/runs/${encodePathSegment(runId)}/hooks`,
      body,
      signal: options.signal,
    });
    return field(answer, "hook_id");
  }

  // ---- hooks, webhooks, signals ----------------------------------------------------------

  /**
   * Deliver `payload` to the hook holding `token`; resolves to the run id once the payload is
   * durably appended to that run's journal (`202`).
   *
   * Always sent with an `Idempotency-Key` (yours, or one generated for this call), and retried
   * with that same key after a network error or a `503`, so a retry never delivers twice.
   * Unknown or released token: {@link HookNotFoundError}; a payload the hook's definition
   * refuses: {@link InvalidPayloadError}.
   */
  async resumeHook(token: string, payload: unknown, options: ResumeHookOptions = {}): Promise<string> {
    const key = options.idempotencyKey || newIdempotencyKey();
    const answer = await this.#request({
      method: "POST",
      path: `/v1/hooks/${encodePathSegment(token)}`,
      body: payload === undefined ? null : payload,
      headers: { "Idempotency-Key": key },
      signal: options.signal,
      retry: options.retry === undefined ? this.#retry : TetherClient.#retryOptions(options.retry, this.#retry),
    });
    return field(answer, "run_id");
  }

  /** The active hook holding `token`, with its `run_id`. */
  async getHook(token: string, options: CallOptions = {}): Promise<HookInfo> {
    return (await this.#request({
      method: "GET",
      path: `/v1/hooks/${encodePathSegment(token)}`,
      signal: options.signal,
    })) as HookInfo;
  }

  /**
   * The URL of the webhook holding `token`: `{baseUrl}/.well-known/workflow/v1/webhook/{token}`.
   * It answers any HTTP method and needs no API token (its token is the credential).
   */
  webhookUrl(token: string): string {
    return `${this.baseUrl}/.well-known/workflow/v1/webhook/${encodePathSegment(token)}`;
  }

  /**
   * Send a signal: a run waiting on `signalId` gets it now, or it is kept until one waits.
   *
   * Always sent with an `Idempotency-Key` (yours, or one generated for this call), and retried
   * with that same key after a network error or a `503`, so a retry never delivers twice. The
   * same key with another payload: {@link IdempotencyKeyReusedError}, nothing stored.
   */
  async signal(signalId: string, payload: unknown, options: SignalOptions = {}): Promise<SignalResult> {
    const key = options.idempotencyKey || newIdempotencyKey();
    const answer = await this.#request({
      method: "POST",
      path: `/v1/signals/${encodePathSegment(signalId)}`,
      body: payload === undefined ? null : payload,
      headers: { "Idempotency-Key": key },
      signal: options.signal,
      retry: options.retry === undefined ? this.#retry : TetherClient.#retryOptions(options.retry, this.#retry),
    });
    const a = (answer ?? {}) as { signal_id?: unknown; delivered_to?: unknown };
    return {
      signalId: typeof a.signal_id === "string" ? a.signal_id : signalId,
      deliveredTo: typeof a.delivered_to === "string" ? a.delivered_to : null,
    };
  }

  // ---- server ----------------------------------------------------------------------------

  /** The names of the workflows the server runs. */
  async workflows(options: CallOptions = {}): Promise<string[]> {
    const answer = await this.#request({ method: "GET", path: "/v1/workflows", signal: options.signal });
    const list = (answer as { workflows?: unknown } | null)?.workflows;
    if (!Array.isArray(list)) throw unexpected("a {\"workflows\": [...]} object", answer);
    return list as string[];
  }

  /** `GET /healthz`: `{"ok": true, "backend": ...}`. */
  async health(options: CallOptions = {}): Promise<{ ok: boolean; backend?: string; [k: string]: unknown }> {
    return (await this.#request({ method: "GET", path: "/healthz", signal: options.signal })) as {
      ok: boolean;
    };
  }

  // ---- transport -------------------------------------------------------------------------

  async #request(spec: RequestSpec): Promise<unknown> {
    let url = this.baseUrl + spec.path;
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(spec.query ?? {})) {
      if (v !== undefined && v !== "") params.set(k, String(v));
    }
    const qs = params.toString();
    if (qs) url += `?${qs}`;

    const headers: Record<string, string> = { accept: "application/json", ...this.#headers };
    if (this.#apiToken !== undefined) headers.authorization = `Bearer ${this.#apiToken}`;
    let body: string | undefined;
    if (spec.body !== undefined) {
      body = JSON.stringify(spec.body);
      headers["content-type"] = "application/json";
    }
    Object.assign(headers, spec.headers);

    const retry = spec.retry ?? { ...DEFAULT_RETRY, attempts: 1 };
    let lastError: TetherError | undefined;
    let retryAfterMs: number | undefined;
    for (let attempt = 1; attempt <= retry.attempts; attempt++) {
      if (attempt > 1) {
        await sleep(delay(retry, attempt, retryAfterMs), spec.signal);
      }
      retryAfterMs = undefined;
      const init: RequestInit = { method: spec.method, headers };
      if (body !== undefined) init.body = body;
      if (spec.signal) init.signal = spec.signal;

      let response: Response;
      let text: string;
      try {
        response = await this.#fetch(url, init);
        text = await response.text();
      } catch (e) {
        if (spec.signal?.aborted) throw spec.signal.reason ?? e;
        lastError = new NetworkError(
          `request failed: ${spec.method} ${spec.path}: ${describe(e)}` +
            (attempt > 1 ? ` (after ${attempt} attempts)` : ""),
          { cause: e, attempts: attempt },
        );
        continue;
      }

      if (response.ok) {
        if (text.trim() === "") return null;
        try {
          return JSON.parse(text) as unknown;
        } catch {
          throw new UnexpectedResponseError(
            response.status,
            "unexpected_response",
            `HTTP ${response.status}: the answer is not JSON: ${text.slice(0, 200)}`,
          );
        }
      }
      const error = errorFromResponse(response.status, text);
      if (response.status !== 503) throw error;
      lastError = error;
      const retryAfter = response.headers.get("retry-after")?.trim();
      if (retryAfter && /^\d+$/.test(retryAfter)) retryAfterMs = Number(retryAfter) * 1000;
    }
    throw lastError ?? new NetworkError(`request failed: ${spec.method} ${spec.path}`);
  }
}

/**
 * The delay before `attempt` (2, 3, ...): the server's `Retry-After` if it sent one, else
 * doubling from `minDelayMs` with ±25 % jitter; capped at `maxDelayMs` either way.
 */
function delay(retry: Required<RetryOptions>, attempt: number, retryAfterMs: number | undefined): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, retry.maxDelayMs);
  const base = Math.min(retry.minDelayMs * 2 ** (attempt - 2), retry.maxDelayMs);
  return Math.min(retry.maxDelayMs, Math.max(0, Math.round(base * (0.75 + Math.random() * 0.5))));
}

function field(answer: unknown, name: string): string {
  const v = (answer as Record<string, unknown> | null)?.[name];
  if (typeof v !== "string") throw unexpected(`an object with a string "${name}"`, answer);
  return v;
}

function unexpected(what: string, answer: unknown): UnexpectedResponseError {
  let shown: string;
  try {
    shown = JSON.stringify(answer) ?? String(answer);
  } catch {
    shown = String(answer);
  }
  return new UnexpectedResponseError(
    200,
    "unexpected_response",
    `unexpected answer from the server: expected ${what}, got ${shown.slice(0, 200)}`,
  );
}

export default TetherClient;
