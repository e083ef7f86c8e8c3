/**
 * The transport every call goes through: URL building, headers, JSON, retries, error mapping.
 * Internal (not exported from the package's entry point).
 *
 * @module
 */

import { NetworkError, TetherError, UnexpectedResponseError, errorFromResponse } from "./errors.js";
import type { FetchLike, RetryOptions, TetherClientOptions } from "./types.js";

export const DEFAULT_RETRY: Required<RetryOptions> = { attempts: 4, minDelayMs: 200, maxDelayMs: 5000 };

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
export function newIdempotencyKey(): string {
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

export interface RequestSpec {
  method: "GET" | "POST" | "DELETE";
  /** Appended to the base URL (already encoded). */
  path: string;
  /**
   * An absolute URL to send to instead of `baseUrl + path` (a resume link). Such a request
   * carries none of the client's own headers: no API token, no extra `headers`.
   */
  url?: string;
  query?: Record<string, string | number | undefined>;
  /** Serialized as JSON when present. */
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal | undefined;
  /** Retry on a network error or a 503 (only for requests that are safe to repeat). */
  retry?: Required<RetryOptions> | undefined;
}

/** The request machinery of one client: its base URL, credentials, `fetch` and retry options. */
export class HttpTransport {
  /** The base URL requests go to (without trailing `/`). */
  readonly baseUrl: string;
  readonly #apiToken: string | undefined;
  readonly #fetch: FetchLike;
  /** The client's retry options. */
  readonly retry: Required<RetryOptions>;
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
    this.retry = retryOptions(options.retry, DEFAULT_RETRY);
    this.#headers = { ...(options.headers ?? {}) };
  }

  /** Whether requests carry an API token. */
  get hasApiToken(): boolean {
    return this.#apiToken !== undefined;
  }

  /** The retry options of one call: the client's, overridden by the call's (`false`: one attempt). */
  retryFor(r: RetryOptions | false | undefined): Required<RetryOptions> {
    return r === undefined ? this.retry : retryOptions(r, this.retry);
  }

  /** Send `spec`; resolves to the decoded JSON of a 2xx answer (`null` for an empty one). */
  async request(spec: RequestSpec): Promise<unknown> {
    const own = spec.url === undefined;
    const shown = own ? spec.path : "<link>";
    let url = own ? this.baseUrl + spec.path : spec.url!;
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(spec.query ?? {})) {
      if (v !== undefined && v !== "") params.set(k, String(v));
    }
    const qs = params.toString();
    if (qs) url += `?${qs}`;

    // A foreign URL (a resume link: its own credential) gets none of the client's headers.
    const headers: Record<string, string> = own ? { accept: "application/json", ...this.#headers } : { accept: "application/json" };
    if (own && this.#apiToken !== undefined) headers.authorization = `Bearer ${this.#apiToken}`;
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
          `request failed: ${spec.method} ${shown}: ${describe(e)}` +
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
    throw lastError ?? new NetworkError(`request failed: ${spec.method} ${shown}`);
  }
}

function retryOptions(r: RetryOptions | false | undefined, base: Required<RetryOptions>): Required<RetryOptions> {
  if (r === false) return { ...base, attempts: 1 };
  const merged = { ...base, ...Object.fromEntries(Object.entries(r ?? {}).filter(([, v]) => v !== undefined)) };
  merged.attempts = Math.max(1, Math.floor(merged.attempts));
  return merged;
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

export function field(answer: unknown, name: string): string {
  const v = (answer as Record<string, unknown> | null)?.[name];
  if (typeof v !== "string") throw unexpected(`an object with a string "${name}"`, answer);
  return v;
}

export function unexpected(what: string, answer: unknown): UnexpectedResponseError {
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
