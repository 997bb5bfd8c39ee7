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
import { isPlainValidOrder } from "../pipeline/order.js";

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
 * Every member name a plain order (isPlainValidOrder) can have, at any depth, sorted by UTF-16 code
 * units as RFC 8785 sorts them. As JSON.stringify's replacer it writes each object's members in this
 * order, which for such an order is its canonical form: RFC 8785 writes numbers and strings as
 * JSON.stringify does.
 */
const CANONICAL_ORDER_KEYS = ["amount", "createdAt", "id", "items", "price", "qty", "simulate", "sku", "source"];

/** A UTF-16 code unit of a surrogate pair standing alone: with the `u` flag, a whole pair is one code point and never matches. */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * The payload has no canonical JSON (RFC 8785): a string in it is not well-formed Unicode, say.
 * `path`, when one place is at fault: the member names and array indexes down to it; the message then
 * starts with the path, dotted, before `detail` (what is wrong there).
 */
export class NoCanonicalFormError extends Error {
  constructor(
    readonly detail: string,
    readonly path?: Array<string | number>,
  ) {
    super(path ? `${path.length ? path.join(".") : "(root)"}: ${detail}` : detail);
  }
}

/**
 * The path to the first string (a value, or a member's name) holding a lone surrogate, depth first;
 * undefined when there is none. Only walked once canonicalization has failed: never on the hot path.
 */
export function loneSurrogatePath(value: unknown, path: Array<string | number> = []): Array<string | number> | undefined {
  if (typeof value === "string") return LONE_SURROGATE.test(value) ? path : undefined;
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const found = loneSurrogatePath(item, [...path, i]);
      if (found) return found;
    }
  } else if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      if (LONE_SURROGATE.test(key)) return [...path, key];
      const found = loneSurrogatePath(item, [...path, key]);
      if (found) return found;
    }
  }
  return undefined;
}

/**
 * SHA-256 (hex) of the payload's canonical JSON (RFC 8785, JSON Canonicalization Scheme): the same
 * order sent with its members in another order or other whitespace has the same fingerprint.
 * Throws NoCanonicalFormError when the payload has none: no JSON form, NaN, Infinity, or a lone
 * surrogate in a string (RFC 8785 requires well-formed Unicode; the error's path then says where).
 */
export function fingerprint(payload: unknown): string {
  let canonical: string | undefined;
  try {
    canonical = canonicalJson(payload);
  } catch (err) {
    const path = loneSurrogatePath(payload);
    if (path) throw new NoCanonicalFormError("a lone UTF-16 surrogate (not well-formed Unicode): it has no canonical JSON form (RFC 8785)", path);
    throw new NoCanonicalFormError(`it has no canonical JSON form (RFC 8785): ${(err as Error).message}`);
  }
  if (canonical === undefined) throw new NoCanonicalFormError("it has no JSON form");
  return createHash("sha256").update(canonical).digest("hex");
}

/** The payload's canonical JSON (RFC 8785), as fingerprint() hashes it; undefined when it has no JSON form. */
export function canonicalJson(payload: unknown): string | undefined {
  // The gateway's usual payload, an order with only the schema's fields, is written out by one
  // JSON.stringify with a key list: canonicalize (a recursive sort and join, a Set of seen objects) was
  // the largest part of the fingerprint's cost. test/unit/intake.test.ts holds the two to the same
  // output on generated orders. A sku with a lone surrogate goes to canonicalize, which refuses it as
  // RFC 8785 does (JSON.stringify would escape it).
  return isPlainValidOrder(payload) && !payload.items.some((item) => LONE_SURROGATE.test(item.sku))
    ? JSON.stringify(payload, CANONICAL_ORDER_KEYS)
    : canonicalize(payload);
}
