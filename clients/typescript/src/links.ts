/**
 * Resume links: `POST /v1/hooks/{token}/links` makes a signed, single-use URL that resumes a
 * hook with a fixed payload for anyone holding it; `POST {url}` uses it. The requests behind
 * `TetherClient.createResumeLink` and `TetherClient.useResumeLink`.
 *
 * @module
 */

import { encodePathSegment, field, unexpected, type HttpTransport } from "./http.js";
import type { CallOptions } from "./types.js";

/** A resume link (as the API sends it). */
export interface ResumeLink {
  /** The link: a confirmation page on `GET`, the resume on `POST` (once). A credential. */
  url: string;
  /** When it stops working, ms since the Unix epoch. */
  expires_at_ms: number;
}

/** The answer of a used link (as the API sends it). */
export interface LinkUse {
  /** The run that received the link's payload. */
  run_id: string;
}

/** Options of {@link createResumeLink}. */
export interface ResumeLinkOptions extends CallOptions {
  /**
   * How long the link works, in ms (server default: a day, or its idempotency window if
   * shorter; longer than that window is an `InvalidLinkError`).
   */
  expiresInMs?: number;
  /** What the confirmation page shows above the payload (at most 200 characters). */
  label?: string;
  /**
   * A name shared by links answering one question (an "approve" and a "reject" link): the
   * first of the set used wins, the others then answer `LinkUsedError`.
   */
  set?: string;
}

/** `POST /v1/hooks/{token}/links` (not retried: each call makes another link). */
export async function createResumeLink(
  http: HttpTransport,
  token: string,
  payload: unknown,
  options: ResumeLinkOptions = {},
): Promise<ResumeLink> {
  const body: Record<string, unknown> = { payload: payload === undefined ? null : payload };
  if (options.expiresInMs !== undefined) body.expires_in_ms = Math.max(0, Math.round(options.expiresInMs));
  if (options.label !== undefined) body.label = options.label;
  if (options.set !== undefined) body.set = options.set;
  const answer = await http.request({
    method: "POST",
    path: `/v1/hooks/${encodePathSegment(token)}/links`,
    body,
    signal: options.signal,
  });
  const expires = (answer as { expires_at_ms?: unknown } | null)?.expires_at_ms;
  if (typeof expires !== "number") throw unexpected('{"url", "expires_at_ms"}', answer);
  return { url: field(answer, "url"), expires_at_ms: expires };
}

/**
 * `POST {url}` with `Accept: application/json`: uses the link. Sent to the link's own URL with
 * none of the client's headers (no API token: a link is its own credential), once (a retry
 * after a lost answer would only meet `link_used`).
 */
export async function useResumeLink(http: HttpTransport, url: string, options: CallOptions = {}): Promise<LinkUse> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError("useResumeLink: url must be an absolute http(s) URL, as createResumeLink answers");
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new TypeError("useResumeLink: url must be an absolute http(s) URL, as createResumeLink answers");
  }
  const answer = await http.request({ method: "POST", path: "", url: parsed.href, signal: options.signal });
  return { run_id: field(answer, "run_id") };
}
