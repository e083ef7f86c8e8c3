/**
 * Durable cron schedules (`/v1/schedules`): the shapes, and the requests behind
 * `TetherClient.createSchedule`, `listSchedules`, `getSchedule`, `deleteSchedule`,
 * `pauseSchedule` and `resumeSchedule`.
 *
 * @module
 */

import { encodePathSegment, unexpected, type HttpTransport } from "./http.js";
import type { CallOptions, RetryOptions } from "./types.js";

/** A tick while the previous run goes on: `skip` it (the server's default) or `allow` it. */
export type ScheduleOverlap = "skip" | "allow";

/** Ticks missed while no node was up: `one` (the server's default: the latest runs once) or `skip`. */
export type ScheduleCatchUp = "one" | "skip";

/** A schedule as the server shows it (field names as the API sends them). */
export interface ScheduleInfo {
  /** The schedule id. */
  id: string;
  /** The workflow each tick starts (one run `sched:{id}:{tick_ms}` per tick). */
  workflow: string;
  /** The cron expression: 5 fields, or 6 with seconds first. */
  cron: string;
  /** The IANA time zone it is read in. */
  timezone: string;
  /** The input of its runs. */
  input: unknown;
  overlap: ScheduleOverlap | (string & {});
  catch_up: ScheduleCatchUp | (string & {});
  /** Paused: no tick fires. */
  paused: boolean;
  /** The next tick, RFC 3339 (UTC, milliseconds); `null` when the expression has no more. */
  next_tick: string | null;
  /** The next tick, ms since the Unix epoch. */
  next_tick_ms: number | null;
  /** The run of its latest tick, if any. */
  last_run_id: string | null;
  /** RFC 3339, UTC, milliseconds. */
  created_at: string;
  /** When it last changed (created, ticked, paused, resumed). */
  updated_at: string;
}

/** What {@link createSchedule} makes (`POST /v1/schedules`). */
export interface NewSchedule {
  /** The schedule id: 1 to 128 letters, digits and `-_.:`. */
  id: string;
  /** The registered workflow each tick starts. */
  workflow: string;
  /** 5 fields (`minute hour day-of-month month day-of-week`), or 6 with seconds first (`*\/10 * * * * *`). */
  cron: string;
  /** The IANA time zone (server default `UTC`). */
  timezone?: string;
  /** The input of every run (server default `{}`). */
  input?: unknown;
  /** Server default `skip`. */
  overlap?: ScheduleOverlap;
  /** Server default `one`. Sent as `catch_up`. */
  catchUp?: ScheduleCatchUp;
}

/** Options of the schedule calls that are safe to repeat (create, pause, resume). */
export interface ScheduleCallOptions extends CallOptions {
  /** Overrides the client's retry options for this call; `false` disables retries. */
  retry?: RetryOptions | false;
}

function path(id: string, rest = ""): string {
  return `/v1/schedules/${encodePathSegment(id)}${rest}`;
}

function schedule(answer: unknown): ScheduleInfo {
  const a = answer as { id?: unknown; cron?: unknown } | null;
  if (typeof a?.id !== "string" || typeof a.cron !== "string") throw unexpected("a schedule object", answer);
  return answer as ScheduleInfo;
}

/**
 * `POST /v1/schedules`. Repeating the same create answers the schedule (so it is retried like a
 * resume); the same id with other settings is a `ScheduleExistsError`.
 */
export async function createSchedule(
  http: HttpTransport,
  s: NewSchedule,
  options: ScheduleCallOptions = {},
): Promise<ScheduleInfo> {
  const body: Record<string, unknown> = { id: s.id, workflow: s.workflow, cron: s.cron };
  if (s.timezone !== undefined) body.timezone = s.timezone;
  if (s.input !== undefined) body.input = s.input;
  if (s.overlap !== undefined) body.overlap = s.overlap;
  if (s.catchUp !== undefined) body.catch_up = s.catchUp;
  return schedule(
    await http.request({
      method: "POST",
      path: "/v1/schedules",
      body,
      signal: options.signal,
      retry: http.retryFor(options.retry),
    }),
  );
}

/** `GET /v1/schedules`: every schedule, by id. */
export async function listSchedules(http: HttpTransport, options: CallOptions = {}): Promise<ScheduleInfo[]> {
  const answer = await http.request({ method: "GET", path: "/v1/schedules", signal: options.signal });
  const list = (answer as { schedules?: unknown } | null)?.schedules;
  if (!Array.isArray(list)) throw unexpected('a {"schedules": [...]} object', answer);
  return list as ScheduleInfo[];
}

/** `GET /v1/schedules/{id}`. */
export async function getSchedule(http: HttpTransport, id: string, options: CallOptions = {}): Promise<ScheduleInfo> {
  return schedule(await http.request({ method: "GET", path: path(id), signal: options.signal }));
}

/** `DELETE /v1/schedules/{id}` (not retried: a second delete is `schedule_not_found`). */
export async function deleteSchedule(http: HttpTransport, id: string, options: CallOptions = {}): Promise<void> {
  await http.request({ method: "DELETE", path: path(id), signal: options.signal });
}

/** `POST /v1/schedules/{id}/pause` or `/resume` (both idempotent, so retried). */
export async function setSchedulePaused(
  http: HttpTransport,
  id: string,
  paused: boolean,
  options: ScheduleCallOptions = {},
): Promise<ScheduleInfo> {
  return schedule(
    await http.request({
      method: "POST",
      path: path(id, paused ? "/pause" : "/resume"),
      signal: options.signal,
      retry: http.retryFor(options.retry),
    }),
  );
}
