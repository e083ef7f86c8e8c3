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

import { HttpTransport, encodePathSegment, field, newIdempotencyKey, unexpected } from "./http.js";
import type {
  CallOptions,
  GetRunOptions,
  HookInfo,
  JournalEvent,
  ListRunsOptions,
  ResumeHookOptions,
  RunInfo,
  SignalOptions,
  SignalResult,
  SpawnHookOptions,
  StartRunOptions,
  TetherClientOptions,
} from "./types.js";
import { isTerminal } from "./types.js";
import * as links from "./links.js";
import type { LinkUse, ResumeLink, ResumeLinkOptions } from "./links.js";
import * as schedules from "./schedules.js";
import type { NewSchedule, ScheduleCallOptions, ScheduleInfo } from "./schedules.js";

export * from "./errors.js";
export * from "./types.js";
export type { LinkUse, ResumeLink, ResumeLinkOptions } from "./links.js";
export type { NewSchedule, ScheduleCallOptions, ScheduleCatchUp, ScheduleInfo, ScheduleOverlap } from "./schedules.js";
export { encodePathSegment } from "./http.js";

/** A client of one Tether server. Each method is one request (plus retries, for resumes). */
export class TetherClient {
  /** The base URL requests go to (without trailing `/`). */
  readonly baseUrl: string;
  readonly #http: HttpTransport;

  constructor(options: TetherClientOptions) {
    this.#http = new HttpTransport(options);
    this.baseUrl = this.#http.baseUrl;
  }

  /** Never shows the API token. */
  toJSON(): { baseUrl: string; apiToken?: string } {
    return this.#http.hasApiToken ? { baseUrl: this.baseUrl, apiToken: "<redacted>" } : { baseUrl: this.baseUrl };
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
    if (options.queue !== undefined) body.queue = options.queue;
    const answer = await this.#http.request({
      method: "POST",
      path: "/v1/runs",
      body,
      headers: { "Idempotency-Key": options.idempotencyKey || newIdempotencyKey() },
      signal: options.signal,
      retry: this.#http.retryFor(options.retry),
    });
    return field(answer, "run_id");
  }

  /** One run as it is now, or (with `wait`) once it has ended or `wait` ms have passed. */
  async getRun(runId: string, options: GetRunOptions = {}): Promise<RunInfo> {
    const wait = options.wait === undefined ? undefined : Math.max(0, Math.round(options.wait));
    return (await this.#http.request({
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
    const answer = await this.#http.request({
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
    const answer = await this.#http.request({
      method: "GET",
      path: `/v1/runs/${encodePathSegment(runId)}/events`,
      signal: options.signal,
    });
    if (!Array.isArray(answer)) throw unexpected("an array of journal entries", answer);
    return answer as JournalEvent[];
  }

  /** The run's active hooks, in creation order. */
  async hooks(runId: string, options: CallOptions = {}): Promise<HookInfo[]> {
    const answer = await this.#http.request({
      method: "GET",
      path: `/v1/runs/${encodePathSegment(runId)}/hooks`,
      signal: options.signal,
    });
    if (!Array.isArray(answer)) throw unexpected("an array of hooks", answer);
    return answer as HookInfo[];
  }

  /** The child runs the run started (`ctx.start_child`), oldest first; each has `parent_run_id`. */
  async children(runId: string, options: CallOptions = {}): Promise<RunInfo[]> {
    const answer = await this.#http.request({
      method: "GET",
      path: `/v1/runs/${encodePathSegment(runId)}/children`,
      signal: options.signal,
    });
    const list = (answer as { children?: unknown } | null)?.children;
    if (!Array.isArray(list)) throw unexpected("a {\"children\": [...]} object", answer);
    return list as RunInfo[];
  }

  /**
   * Ask a run to cancel (it ends as `cancelled` at its next await). A finished run is a
   * {@link RunFinishedError}.
   */
  async cancelRun(runId: string, reason?: string, options: CallOptions = {}): Promise<void> {
    await this.#http.request({
      method: "POST",
      path: `/v1/runs/${encodePathSegment(runId)}/cancel`,
      body: reason === undefined ? {} : { reason },
      signal: options.signal,
    });
  }

  /** The shared state of the run's namespace. */
  async state(runId: string, options: CallOptions = {}): Promise<Record<string, unknown>> {
    const answer = await this.#http.request({
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
    const answer = await this.#http.request({
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
    const answer = await this.#http.request({
      method: "POST",
      path: `/v1/hooks/${encodePathSegment(token)}`,
      body: payload === undefined ? null : payload,
      headers: { "Idempotency-Key": key },
      signal: options.signal,
      retry: this.#http.retryFor(options.retry),
    });
    return field(answer, "run_id");
  }

  /** The active hook holding `token`, with its `run_id`. */
  async getHook(token: string, options: CallOptions = {}): Promise<HookInfo> {
    return (await this.#http.request({
      method: "GET",
      path: `/v1/hooks/${encodePathSegment(token)}`,
      signal: options.signal,
    })) as HookInfo;
  }

  /**
   * Make a resume link for the hook holding `token`: a signed URL that resumes it with
   * `payload` once, for anyone holding it, without the API token (`GET` shows a confirmation
   * page, `POST` resumes). The payload is checked against the hook's definition now
   * ({@link InvalidPayloadError}); a bad expiry, label or set, or a webhook's token:
   * {@link InvalidLinkError}. Not retried: each call makes another link.
   */
  async createResumeLink(token: string, payload: unknown, options: ResumeLinkOptions = {}): Promise<ResumeLink> {
    return links.createResumeLink(this.#http, token, payload, options);
  }

  /**
   * Use a resume link (`POST` it with `Accept: application/json`); resolves to `{ run_id }`
   * of the run that got its payload. The request goes to the link's own URL and carries
   * none of the client's headers (no API token: the link is its own credential). Sent once:
   * a second use is a {@link LinkUsedError}; also {@link LinkExpiredError},
   * {@link LinkInvalidError}, {@link HookNotFoundError} (nothing waits for it any more).
   */
  async useResumeLink(url: string, options: CallOptions = {}): Promise<LinkUse> {
    return links.useResumeLink(this.#http, url, options);
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
    const answer = await this.#http.request({
      method: "POST",
      path: `/v1/signals/${encodePathSegment(signalId)}`,
      body: payload === undefined ? null : payload,
      headers: { "Idempotency-Key": key },
      signal: options.signal,
      retry: this.#http.retryFor(options.retry),
    });
    const a = (answer ?? {}) as { signal_id?: unknown; delivered_to?: unknown };
    return {
      signalId: typeof a.signal_id === "string" ? a.signal_id : signalId,
      deliveredTo: typeof a.delivered_to === "string" ? a.delivered_to : null,
    };
  }

  // ---- schedules -------------------------------------------------------------------------

  /**
   * Create a durable cron schedule: each tick starts one run `sched:{id}:{tick_ms}` of its
   * workflow. Repeating the same create resolves to the schedule (so it is retried like a
   * resume); the same id with other settings: {@link ScheduleExistsError}; a bad expression,
   * zone, `overlap` or `catchUp`: {@link InvalidScheduleError}; an unknown workflow:
   * {@link WorkflowNotFoundError}.
   */
  async createSchedule(schedule: NewSchedule, options: ScheduleCallOptions = {}): Promise<ScheduleInfo> {
    return schedules.createSchedule(this.#http, schedule, options);
  }

  /** Every schedule, by id. */
  async listSchedules(options: CallOptions = {}): Promise<ScheduleInfo[]> {
    return schedules.listSchedules(this.#http, options);
  }

  /** One schedule ({@link ScheduleNotFoundError} if there is none). */
  async getSchedule(id: string, options: CallOptions = {}): Promise<ScheduleInfo> {
    return schedules.getSchedule(this.#http, id, options);
  }

  /** Delete a schedule: no more ticks; the runs it started stay. */
  async deleteSchedule(id: string, options: CallOptions = {}): Promise<void> {
    return schedules.deleteSchedule(this.#http, id, options);
  }

  /** Pause a schedule: no tick fires until it is resumed (pausing a paused one does nothing). */
  async pauseSchedule(id: string, options: ScheduleCallOptions = {}): Promise<ScheduleInfo> {
    return schedules.setSchedulePaused(this.#http, id, true, options);
  }

  /** Resume a paused schedule from its next tick after now (the paused ticks never fire). */
  async resumeSchedule(id: string, options: ScheduleCallOptions = {}): Promise<ScheduleInfo> {
    return schedules.setSchedulePaused(this.#http, id, false, options);
  }

  // ---- server ----------------------------------------------------------------------------

  /** The names of the workflows the server runs. */
  async workflows(options: CallOptions = {}): Promise<string[]> {
    const answer = await this.#http.request({ method: "GET", path: "/v1/workflows", signal: options.signal });
    const list = (answer as { workflows?: unknown } | null)?.workflows;
    if (!Array.isArray(list)) throw unexpected("a {\"workflows\": [...]} object", answer);
    return list as string[];
  }

  /** `GET /healthz`: `{"ok": true, "backend": ...}`. */
  async health(options: CallOptions = {}): Promise<{ ok: boolean; backend?: string; [k: string]: unknown }> {
    return (await this.#http.request({ method: "GET", path: "/healthz", signal: options.signal })) as {
      ok: boolean;
    };
  }
}

export default TetherClient;
