/**
 * The shapes the client sends and answers (field names of answers as the API sends them).
 *
 * @module
 */

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
  /** The schedule whose tick started it (its id is then `sched:{id}:{tick_ms}`), else `null` (absent from older servers). */
  schedule_id?: string | null;
  /** The task queue it is on (`default` unless started with another; absent from older servers). */
  queue?: string | null;
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
 * which always carry an `Idempotency-Key`): after a `NetworkError` or a `503` answer, with
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

/** Options of `TetherClient`. */
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
  /**
   * The task queue to run it on (server default `default`; 1 to 128 ASCII letters, digits,
   * `_-.:`). Only nodes serving that queue run it: until one does, it waits `pending`.
   */
  queue?: string;
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
