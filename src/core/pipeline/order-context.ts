/**
 * The `ctx` a worker gives its handler with each order (HandlerContext).
 *
 * A class rather than an object literal: a literal with a getter is built by the runtime property by
 * property, with a closure for each of `signal` and `log`, for every order. Here `signal` is an
 * accessor on the prototype that asks the worker when it is read (most handlers never do), and `log`
 * is the one closure made per order — an own field, so that a `{ ...ctx }` copy or `Object.assign`
 * still carries a working `log`. A copy does not carry `signal` (it is not an own property): pass `ctx`
 * itself on. The worker's references live under symbols, not `#private` fields, so a Proxy or an
 * `Object.create(ctx)` wrapper around ctx still reads `signal`.
 */
import type { DbClient, HandlerContext } from "./handler.js";

/** What every context of one worker refers to: made once per worker, not per order. */
export interface ContextSource<K> {
  /** The handler's abort signal for the order held under `key`. */
  signal(key: K): AbortSignal;
  /** A handler's log line about order `orderId`. */
  log(orderId: string, message: string): void;
}

const SOURCE = Symbol("orderq.context.source");
const KEY = Symbol("orderq.context.key");

export class OrderContext<K> implements HandlerContext {
  readonly log: (message: string) => void;
  private readonly [SOURCE]: ContextSource<K>;
  private readonly [KEY]: K;

  /**
   * `key` names the order to `source` (the worker's message in flight), `attempt` is the delivery
   * count from 1, `idempotencyKey` the order id, `db` the inbox transaction (or a client that refuses).
   */
  constructor(
    source: ContextSource<K>,
    key: K,
    readonly attempt: number,
    readonly idempotencyKey: string,
    readonly db: DbClient,
  ) {
    this[SOURCE] = source;
    this[KEY] = key;
    this.log = (message) => source.log(idempotencyKey, message);
  }

  get signal(): AbortSignal {
    return this[SOURCE].signal(this[KEY]);
  }
}
