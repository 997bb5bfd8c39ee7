/**
 * The handler contract — the team's code that processes one order — and the built-in simulated
 * handler (processing time, transient failures, the poison switch) that chaos runs and the bench use.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Order } from "./order.js";
import type { DbClient } from "./outcome-store.js";
import type { Rng } from "../base/random.js";

export type { DbClient, DbQuery } from "./outcome-store.js";
export type { Order } from "./order.js";

/** What a handler is given beside the order. */
export interface HandlerContext {
  /** This delivery's number: JetStream's delivery count, 1 on the first. */
  readonly attempt: number;
  /**
   * The order id. Pass it to external services (a payment provider's idempotency key, an e-mail
   * API's de-duplication id): effects outside the inbox's database are at-least-once, and this key is
   * what lets the other side apply them once.
   */
  readonly idempotencyKey: string;
  /**
   * Aborted when this process stops waiting for the handler — at the drain timeout of a stop, or when
   * it loses the order's lease (no renewal reached the broker for an ack wait: the process stalled or
   * its connection was down, and the order may be redelivered to another worker): give up and throw.
   */
  readonly signal: AbortSignal;
  /** Writes one line to the worker's log (stderr), tagged with the order id. */
  readonly log: (message: string) => void;
  /**
   * Inbox mode (`--inbox`): the open transaction that the order's inbox row commits in. Writes made
   * through it commit exactly once, with the row; a failed query fails the attempt (even when the
   * handler catches it). The handler may run twice for one delivery (its batch run again after
   * another order of it failed): the first run's writes through it are rolled back. Without an inbox
   * every call rejects with an error saying so.
   */
  readonly db: DbClient;
}

/** The module contract: `export default async (order, ctx) => { … }`. Resolve = done; throw = failed attempt. */
export type OrderHandler = (order: Order, ctx: HandlerContext) => Promise<void>;

/** Identity, for type checking a handler module: `export default defineHandler(async (order, ctx) => …)`. */
export function defineHandler(handler: OrderHandler): OrderHandler {
  return handler;
}

/** Brand shared by every copy of orderq, so a handler's own installed copy of this class still counts. */
const NON_RETRYABLE = Symbol.for("orderq.NonRetryableError");

/** Retrying cannot help: the order goes to the DLQ at once (reason `non-retryable`). */
export class NonRetryableError extends Error {
  override name = "NonRetryableError";
  readonly [NON_RETRYABLE] = true;
}

/** True for a NonRetryableError, whichever copy of orderq the handler imported it from. */
export function isNonRetryable(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as Record<symbol, unknown>)[NON_RETRYABLE] === true;
}

export class TransientError extends Error {
  override name = "TransientError";
}

export class PoisonOrderError extends Error {
  override name = "PoisonOrderError";
}

export interface HandlerConfig {
  /** Processing time per order, in ms. */
  handlerMs: number;
  /** Probability that an attempt fails with a transient (retryable) error. */
  failRate: number;
  /** When false the "bug" behind poison orders is fixed: they process like any other. */
  poisonSwitch: boolean;
}

/** The simulated handler's success, settled once and shared by every order that succeeds. */
const DONE: Promise<void> = Promise.resolve();

/**
 * The built-in handler: `handlerMs` of waiting (none at 0: no timer, no extra turn), a transient
 * failure with probability `failRate` (no random draw at 0), the poison switch's orders refused. Not
 * an async function: the bench and chaos run it for every order, and at zero delay it returns the one
 * settled promise instead of a new one each time; failures are still rejections, never throws.
 */
export function simulatedHandler(config: HandlerConfig, rng: Rng): OrderHandler {
  const settle = (order: Order, attempt: number): Promise<void> =>
    config.failRate > 0 && rng() < config.failRate
      ? Promise.reject(new TransientError(`transient failure of order ${order.id} on attempt ${attempt}`))
      : DONE;
  return (order, { attempt }) => {
    if (config.poisonSwitch && order.simulate) {
      if (order.simulate === "crash") process.kill(process.pid, "SIGKILL");
      if (order.simulate === "fatal") return Promise.reject(new NonRetryableError(`order ${order.id} cannot be processed (fatal)`));
      return Promise.reject(new PoisonOrderError(`order ${order.id} rejected on attempt ${attempt} (poison)`));
    }
    return config.handlerMs > 0 ? sleep(config.handlerMs).then(() => settle(order, attempt)) : settle(order, attempt);
  };
}
