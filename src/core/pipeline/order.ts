/** The order document, its validation and a generator for producers and tests. */
import { z } from "zod";
import { SOURCES, type Source } from "../nats/names.js";
import type { Rng } from "../base/random.js";

/** Larger payloads are rejected as invalid: an order is a small document. */
export const MAX_ORDER_BYTES = 64 * 1024;

/**
 * Behaviour the simulated handler gives an order, for chaos work: `poison` fails every attempt
 * (retryable), `fatal` fails with a non-retryable error, `crash` kills the worker process.
 */
export const SIMULATIONS = ["poison", "fatal", "crash"] as const;
export type Simulation = (typeof SIMULATIONS)[number];

/** An order id as the schema allows it (1-64 of A-Z a-z 0-9 _ -): anything else cannot be an order's. */
export const ORDER_ID = /^[A-Za-z0-9_-]{1,64}$/;

const itemShape = {
  sku: z.string().min(1).max(64).describe("Stock-keeping unit."),
  qty: z.number().int().positive().describe("Units ordered."),
  price: z.number().nonnegative().describe("Price of one unit."),
};
/** The order's fields, in the order generated orders carry them (a parsed order re-serialises the same). */
function orderShape<I extends z.ZodType>(item: I) {
  return {
    id: z
      .string()
      .regex(ORDER_ID, "1-64 characters of A-Z a-z 0-9 _ -")
      .describe("Unique order id: the publish id (de-duplication) and the ledger key."),
    source: z.enum(SOURCES).describe("Where the order came from."),
    items: z.array(item).min(1).describe("Order lines, at least one."),
    amount: z.number().nonnegative().describe("Order total."),
    createdAt: z.iso.datetime().describe("ISO-8601 time the order was created."),
    simulate: z.enum(SIMULATIONS).optional().describe("Chaos runs only: how the simulated handler treats the order."),
  };
}

/**
 * The order document. Fields it does not name (a `customer`, an address) are kept and handed to the
 * handler as they are: the format belongs to the team that sends orders. `strictOrderSchema` refuses
 * them instead (`orderq work --strict-orders`).
 */
export const orderSchema = z.looseObject(orderShape(z.looseObject(itemShape)));
export const strictOrderSchema = z.strictObject(orderShape(z.strictObject(itemShape)));

export type Order = z.infer<typeof orderSchema>;

/** The order format as JSON Schema (draft 2020-12), for the teams that produce orders: `orderq schema`. */
export function orderJsonSchema(strict = false): Record<string, unknown> {
  return {
    title: "orderq order",
    description: strict
      ? "An order as `orderq work --strict-orders` accepts it: no fields beyond these."
      : "An order as `orderq work` accepts it. Other fields are allowed and reach the handler unchanged.",
    ...z.toJSONSchema(strict ? strictOrderSchema : orderSchema, { io: "input" }),
  };
}

export type ParseResult = { ok: true; order: Order } | { ok: false; reason: string };

const decoder = new TextDecoder();

/** Validates a raw payload; the reason names the field at fault. Never throws. `strict`: refuse unknown fields. */
export function parseOrder(payload: Uint8Array, strict = false): ParseResult {
  if (payload.length > MAX_ORDER_BYTES) {
    return { ok: false, reason: `payload is ${payload.length} bytes, more than ${MAX_ORDER_BYTES}` };
  }
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(payload));
  } catch (err) {
    return { ok: false, reason: `not JSON: ${(err as Error).message}` };
  }
  if (isPlainValidOrder(json)) return { ok: true, order: json };
  const result = (strict ? strictOrderSchema : orderSchema).safeParse(json);
  if (result.success) return { ok: true, order: result.data };
  const issue = result.error.issues[0];
  const path = issue.path.length ? issue.path.join(".") : "(root)";
  return { ok: false, reason: `${path}: ${issue.message}` };
}

const ORDER_KEYS = new Set(["id", "source", "items", "amount", "createdAt", "simulate"]);
/** z.iso.datetime()'s default form (UTC `Z`, seconds, any fraction); the calendar day is checked apart. */
const DATETIME = /^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?Z$/;

/**
 * orderSchema's fast path, written out by hand: true only for a value the schema accepts as it is. On
 * the worker's hot path zod's safeParse was most of the validation time (README, Performance); this
 * check costs a fraction of it. It may refuse what the schema would accept — zod then
 * decides, and names the field at fault — but never the other way round: test/unit/units.test.ts holds
 * it to the schema on generated orders. Keep the two in step when the schema changes.
 */
export function isPlainValidOrder(v: unknown): v is Order {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  for (const key in o) if (!ORDER_KEYS.has(key)) return false;
  if (typeof o.id !== "string" || !ORDER_ID.test(o.id)) return false;
  if (!(SOURCES as readonly unknown[]).includes(o.source)) return false;
  if (typeof o.amount !== "number" || !(o.amount >= 0) || !Number.isFinite(o.amount)) return false;
  if ("simulate" in o && !(SIMULATIONS as readonly unknown[]).includes(o.simulate)) return false;
  if (typeof o.createdAt !== "string" || !DATETIME.test(o.createdAt)) return false;
  // A day the calendar has (no 31 April, 29 February only in leap years), as zod's pattern requires.
  // Read from the digits DATETIME has checked: no Date and no substrings for every order.
  if (digitsAt(o.createdAt, 8, 2) > daysInMonth(digitsAt(o.createdAt, 0, 4), digitsAt(o.createdAt, 5, 2))) return false;
  if (!Array.isArray(o.items) || o.items.length === 0) return false;
  for (const item of o.items as unknown[]) {
    if (typeof item !== "object" || item === null || Array.isArray(item)) return false;
    const i = item as Record<string, unknown>;
    let keys = 0;
    for (const key in i) {
      if (key !== "sku" && key !== "qty" && key !== "price") return false;
      keys++;
    }
    if (keys !== 3) return false;
    if (typeof i.sku !== "string" || i.sku.length < 1 || i.sku.length > 64) return false;
    if (typeof i.qty !== "number" || !Number.isSafeInteger(i.qty) || i.qty <= 0) return false;
    if (typeof i.price !== "number" || !(i.price >= 0) || !Number.isFinite(i.price)) return false;
  }
  return true;
}

/** The number written by the `count` ASCII digits of `s` from `from` (checked to be digits by the caller). */
function digitsAt(s: string, from: number, count: number): number {
  let n = 0;
  for (let i = from; i < from + count; i++) n = n * 10 + s.charCodeAt(i) - 48;
  return n;
}

/** Days in `month` (1–12) of `year`, proleptic Gregorian (as Date counts them; year 0 is a leap year). */
export function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Best effort order id of a payload that may be invalid, for DLQ entries and logs. */
export function guessOrderId(payload: Uint8Array): string | undefined {
  try {
    const id = (JSON.parse(decoder.decode(payload)) as { id?: unknown }).id;
    return typeof id === "string" ? id : undefined;
  } catch {
    return undefined;
  }
}

const SKUS = ["book-001", "lamp-204", "mug-330", "pen-017", "desk-900", "sock-123", "cable-450", "tea-077"];

export function makeOrder(id: string, source: Source, rng: Rng, simulate?: Simulation): Order {
  const count = 1 + Math.floor(rng() * 3);
  const items = Array.from({ length: count }, () => ({
    sku: SKUS[Math.floor(rng() * SKUS.length)],
    qty: 1 + Math.floor(rng() * 4),
    price: Math.round(rng() * 10_000) / 100,
  }));
  const amount = Math.round(items.reduce((sum, i) => sum + i.qty * i.price, 0) * 100) / 100;
  const order: Order = { id, source, items, amount, createdAt: new Date().toISOString() };
  if (simulate) order.simulate = simulate;
  return order;
}

/** Bytes one zero-priced padding item adds to an order's JSON, besides its sku. */
const PAD_ITEM_BYTES = JSON.stringify({ sku: "", qty: 1, price: 0 }).length + 1;

/**
 * The order as JSON, padded with zero-priced items (amount unchanged) to at least `minBytes`, so a
 * benchmark can send orders of a chosen size that still validate. Overshoots by at most one item.
 */
export function orderJson(order: Order, minBytes = 0): string {
  const json = JSON.stringify(order);
  let missing = minBytes - json.length;
  if (missing <= 0) return json;
  const items = [...order.items];
  while (missing > 0) {
    const sku = "x".repeat(Math.min(64, Math.max(1, missing - PAD_ITEM_BYTES)));
    items.push({ sku, qty: 1, price: 0 });
    missing -= PAD_ITEM_BYTES + sku.length;
  }
  return JSON.stringify({ ...order, items });
}

/** Malformed payloads of the kinds a real producer emits, for `--invalid-rate`. */
export function makeInvalidPayload(id: string, source: Source, rng: Rng): string {
  const kinds = [
    () => `{"id":"${id}","source":"${source}",`, // truncated JSON
    () => JSON.stringify({ source, items: [], amount: 1, createdAt: new Date().toISOString() }), // no id
    () => JSON.stringify({ id, source, items: "many", amount: "ten", createdAt: 7 }), // wrong types
    () =>
      JSON.stringify({ id, source, items: [{ sku: "x".repeat(MAX_ORDER_BYTES), qty: 1, price: 1 }], amount: 1, createdAt: new Date().toISOString() }), // oversize
  ];
  return kinds[Math.floor(rng() * kinds.length)]();
}
