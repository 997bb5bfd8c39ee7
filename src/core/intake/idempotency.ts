/**
 * The idempotency key of a request and the fingerprint of its payload: pure functions, unit-tested.
 *
 * The key travels in the `Idempotency-Key` header of the IETF httpapi draft
 * (draft-ietf-httpapi-idempotency-key-header): a Structured Field String, `"…"` with `\"` and `\\` as
 * its only escapes (RFC 8941, section 3.3.3). Clients written before the draft send a bare token, so
 * that is accepted too.
 */
import { createHash } from "node:crypto";
import canonicalize from "canonicalize";

/** Keys longer than this are refused: an order id is at most 64 characters, a UUID 36. */
export const MAX_KEY_LENGTH = 255;

export type KeyParse = { ok: true; key: string } | { ok: false; reason: string };

/**
 * The key in an `Idempotency-Key` header value (quoted string or bare token), or why it is malformed.
 * Characters outside printable ASCII (0x20-0x7E) are refused, as RFC 8941 does for a String.
 */
export function parseIdempotencyKey(header: string): KeyParse {
  const value = header.trim();
  let key: string;
  if (value.startsWith('"')) {
    if (value.length < 2 || !value.endsWith('"')) return { ok: false, reason: "a quoted key must end with a double quote" };
    key = "";
    const inner = value.slice(1, -1);
    for (let i = 0; i < inner.length; i++) {
      const c = inner[i];
      if (c === "\\") {
        const next = inner[++i];
        if (next !== '"' && next !== "\\") return { ok: false, reason: 'only \\" and \\\\ may be escaped in a quoted key' };
        key += next;
      } else if (c === '"') {
        return { ok: false, reason: "a double quote inside a quoted key must be escaped" };
      } else {
        key += c;
      }
    }
  } else {
    if (/[\s"\\]/.test(value)) return { ok: false, reason: "a bare key may not contain spaces, quotes or backslashes (quote it)" };
    key = value;
  }
  if (key.length === 0) return { ok: false, reason: "the key is empty" };
  if (key.length > MAX_KEY_LENGTH) return { ok: false, reason: `the key is longer than ${MAX_KEY_LENGTH} characters` };
  if (!/^[\x20-\x7e]+$/.test(key)) return { ok: false, reason: "the key may use printable ASCII characters only" };
  return { ok: true, key };
}

/**
 * SHA-256 (hex) of the payload's canonical JSON (RFC 8785, JSON Canonicalization Scheme): the same
 * order sent with its members in another order or other whitespace has the same fingerprint.
 */
export function fingerprint(payload: unknown): string {
  const canonical = canonicalize(payload);
  if (canonical === undefined) throw new TypeError("the payload has no JSON form");
  return createHash("sha256").update(canonical).digest("hex");
}
