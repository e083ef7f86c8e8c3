/**
 * Errors thrown by {@link TetherClient}. The server answers every error as
 * `{"error": {"code", "message"}}` with a 4xx/5xx status; each known `code` has a class here,
 * any other code is a plain {@link TetherError}. Every class extends {@link TetherError}, so
 * `catch (e) { if (e instanceof TetherError) ... }` catches them all.
 *
 * @module
 */

/** An error answer from the server, or a request that got none ({@link NetworkError}). */
export class TetherError extends Error {
  /** The HTTP status (0 when there was no answer: {@link NetworkError}). */
  readonly status: number;
  /**
   * The stable error code (`hook_not_found`, `invalid_payload`, ...). An error answer that was
   * not the API's JSON gets `http_<status>`.
   */
  readonly code: string;

  constructor(status: number, code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.status = status;
    this.code = code;
    // The subclass's own name (`HookNotFoundError`, ...), also after minification of `this.constructor`.
    this.name = new.target.errorName;
  }

  /** The name instances carry (`error.name`). */
  static readonly errorName: string = "TetherError";
}

/** `404 hook_not_found`: no active hook holds the token (never created, disposed, or its run ended). */
export class HookNotFoundError extends TetherError {
  static override readonly errorName = "HookNotFoundError";
}

/** `410 hook_expired`: the token's hook expired (`HookOptions::expires_in`); nothing was stored. */
export class HookExpiredError extends TetherError {
  static override readonly errorName = "HookExpiredError";
}

/**
 * `410 token_reserved`: the token's hook has ended and the token stays reserved for a while
 * (`HookOptions::reserve_for`); nothing was stored. The message says until when.
 */
export class TokenReservedError extends TetherError {
  static override readonly errorName = "TokenReservedError";
}

/** `hook_conflict`: a workflow asked for a token another run's hook holds. */
export class HookConflictError extends TetherError {
  static override readonly errorName = "HookConflictError";
}

/** `400 invalid_payload`: the payload does not fit the hook's definition; nothing was stored. */
export class InvalidPayloadError extends TetherError {
  static override readonly errorName = "InvalidPayloadError";
}

/** `404 run_not_found`: no such run. */
export class RunNotFoundError extends TetherError {
  static override readonly errorName = "RunNotFoundError";
}

/** `404 workflow_not_found`: no workflow is registered under that name. */
export class WorkflowNotFoundError extends TetherError {
  static override readonly errorName = "WorkflowNotFoundError";
}

/** `409 run_finished`: the run has already ended (completed, failed or cancelled). */
export class RunFinishedError extends TetherError {
  static override readonly errorName = "RunFinishedError";
}

/**
 * `409 idempotency_key_reused`: the idempotency key was first used with another payload;
 * nothing was stored. A retry must send the same payload; a new payload needs a new key.
 */
export class IdempotencyKeyReusedError extends TetherError {
  static override readonly errorName = "IdempotencyKeyReusedError";
}

/**
 * `409 run_exists`: a run with the chosen `runId` exists, started with another workflow or
 * input; nothing was stored. Choose another id, or repeat the first start exactly.
 */
export class RunExistsError extends TetherError {
  static override readonly errorName = "RunExistsError";
}

/** `401 unauthorized`: the API token is missing or wrong. */
export class UnauthorizedError extends TetherError {
  static override readonly errorName = "UnauthorizedError";
}

/** `413 payload_too_large`: the body is over the server's limit; nothing was stored. */
export class PayloadTooLargeError extends TetherError {
  static override readonly errorName = "PayloadTooLargeError";
}

/** `400 invalid_input`: the input does not fit the workflow's input type. */
export class InvalidInputError extends TetherError {
  static override readonly errorName = "InvalidInputError";
}

/** `400 invalid_json`: the body is not the JSON the endpoint expects. */
export class InvalidJsonError extends TetherError {
  static override readonly errorName = "InvalidJsonError";
}

/** `400 hook_self_target`: a hook thread may not target the run's own workflow on the default task queue. */
export class HookSelfTargetError extends TetherError {
  static override readonly errorName = "HookSelfTargetError";
}

/** `404 schedule_not_found`: no schedule has this id. */
export class ScheduleNotFoundError extends TetherError {
  static override readonly errorName = "ScheduleNotFoundError";
}

/**
 * `409 schedule_exists`: a schedule with this id exists with other settings; nothing was
 * changed. (Repeating a create exactly is not an error: it answers the schedule.)
 */
export class ScheduleExistsError extends TetherError {
  static override readonly errorName = "ScheduleExistsError";
}

/** `400 invalid_schedule`: a bad id, cron expression, time zone, `overlap` or `catch_up`. */
export class InvalidScheduleError extends TetherError {
  static override readonly errorName = "InvalidScheduleError";
}

/**
 * `400 invalid_link`: the request cannot make a resume link (an expiry past the server's
 * idempotency window or zero, a label too long, a bad set name, a webhook's token).
 */
export class InvalidLinkError extends TetherError {
  static override readonly errorName = "InvalidLinkError";
}

/** `403 link_invalid`: the link is not valid (altered, cut short, or signed by a key this server lacks). */
export class LinkInvalidError extends TetherError {
  static override readonly errorName = "LinkInvalidError";
}

/** `410 link_expired`: the link has expired; nothing was delivered. */
export class LinkExpiredError extends TetherError {
  static override readonly errorName = "LinkExpiredError";
}

/**
 * `410 link_used`: the link (or another of its `set`) was already used; its answer was
 * delivered once and nothing new was.
 */
export class LinkUsedError extends TetherError {
  static override readonly errorName = "LinkUsedError";
}

/**
 * `storage_unavailable` (503), `storage_full` (507), `storage_read_only` (503), or any other
 * `storage_*` code: the server's database failed and nothing of the request was kept. Retry later.
 */
export class StorageError extends TetherError {
  static override readonly errorName = "StorageError";
}

/**
 * The request got no answer (connection refused or reset, DNS failure, the answer's body cut
 * off, ...). The server may or may not have acted on it: retry with the same idempotency key.
 * `status` is 0 and `code` is `network_error`; `cause` is what `fetch` threw.
 */
export class NetworkError extends TetherError {
  static override readonly errorName = "NetworkError";
  /** How many attempts were made before giving up (1 when the call was not retried). */
  readonly attempts: number;

  constructor(message: string, options?: { cause?: unknown; attempts?: number }) {
    super(0, "network_error", message, options);
    this.attempts = options?.attempts ?? 1;
  }
}

/** A success answer that is not the JSON the endpoint promises (`code` is `unexpected_response`). */
export class UnexpectedResponseError extends TetherError {
  static override readonly errorName = "UnexpectedResponseError";
}

type ApiErrorClass = new (status: number, code: string, message: string) => TetherError;

/** The class of each known error code. */
const BY_CODE: Readonly<Record<string, ApiErrorClass>> = {
  hook_not_found: HookNotFoundError,
  hook_expired: HookExpiredError,
  token_reserved: TokenReservedError,
  hook_conflict: HookConflictError,
  invalid_payload: InvalidPayloadError,
  run_not_found: RunNotFoundError,
  workflow_not_found: WorkflowNotFoundError,
  run_finished: RunFinishedError,
  idempotency_key_reused: IdempotencyKeyReusedError,
  run_exists: RunExistsError,
  unauthorized: UnauthorizedError,
  payload_too_large: PayloadTooLargeError,
  invalid_input: InvalidInputError,
  invalid_json: InvalidJsonError,
  hook_self_target: HookSelfTargetError,
  schedule_not_found: ScheduleNotFoundError,
  schedule_exists: ScheduleExistsError,
  invalid_schedule: InvalidScheduleError,
  invalid_link: InvalidLinkError,
  link_invalid: LinkInvalidError,
  link_expired: LinkExpiredError,
  link_used: LinkUsedError,
};

/**
 * The error for an API error answer: the class of its `code` (any `storage_*` code is a
 * {@link StorageError}, any 401 an {@link UnauthorizedError}), else a plain {@link TetherError}.
 */
export function errorFromCode(status: number, code: string, message: string): TetherError {
  const known = Object.prototype.hasOwnProperty.call(BY_CODE, code) ? BY_CODE[code] : undefined;
  if (known) return new known(status, code, message);
  if (code.startsWith("storage_")) return new StorageError(status, code, message);
  if (status === 401) return new UnauthorizedError(status, code, message);
  if (status === 413) return new PayloadTooLargeError(status, code, message);
  return new TetherError(status, code, message);
}

/**
 * The error for a non-2xx answer with body `text`: `{"error": {"code", "message"}}` gives the
 * class of its code; anything else is `http_<status>` with the text (trimmed) as the message.
 */
export function errorFromResponse(status: number, text: string): TetherError {
  try {
    const body: unknown = JSON.parse(text);
    if (typeof body === "object" && body !== null && "error" in body) {
      const err = (body as { error: unknown }).error;
      if (typeof err === "object" && err !== null) {
        const { code, message } = err as { code?: unknown; message?: unknown };
        if (typeof code === "string") {
          return errorFromCode(status, code, typeof message === "string" ? message : code);
        }
      }
    }
  } catch {
    // Not JSON: fall through.
  }
  const trimmed = text.trim();
  const snippet = trimmed.length > 500 ? `${trimmed.slice(0, 500)}…` : trimmed;
  return errorFromCode(status, `http_${status}`, snippet ? `HTTP ${status}: ${snippet}` : `HTTP ${status}`);
}
