/**
 * The `ctx` a worker gives its handler with each order (HandlerContext).
 *
 * A class rather than an object literal: a literal with a getter is built by the runtime property by
 * property, with a closure for each of `signal` and `log`, for every order — and most handlers read
 * neither. Here both are accessors on the prototype: `signal` asks the worker when it is read, and
 * `log` makes its function only then. Destructuring (`async (order, { log, signal }) => …`) reads
 * them as before; a copy made with `{ ...ctx }` carries only the data fields.
 */
import type { DbClient, HandlerContext } from "./handler.js";

/** What every context of one worker refers to: made once per worker, not per order. */
export interface ContextSource<K> {
  /** The handler's abort signal for the order held under `key`. */
  signal(key: K): AbortSignal;
  /** A handler's log line about order `orderId`. */
  log(orderId: string, message: string): void;
}

export class OrderContext<K> implements HandlerContext {
  readonly #source: ContextSource<K>;
  readonly #key: K;

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
    this.#source = source;
    this.#key = key;
  }

  get signal(): AbortSignal {
    return this.#source.signal(this.#key);
  }

  get log(): (message: string) => void {
    const source = this.#source;
    const orderId = this.idempotencyKey;
    return (message) => source.log(orderId, message);
  }
}
