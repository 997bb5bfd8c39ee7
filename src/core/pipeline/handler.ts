/** The simulated order handler: processing time, transient failures, and the poison switch. */
import type { Order } from "./order.js";
import type { Rng } from "../base/random.js";
import { setTimeout as sleep } from "node:timers/promises";

/** Retrying cannot help: the order goes to the DLQ at once. */
export class NonRetryableError extends Error {
  override name = "NonRetryableError";
}

export class TransientError extends Error {
  override name = "TransientError";
}

export class PoisonOrderError extends Error {
  override name = "PoisonOrderError";
}

export interface HandlerConfig {
  /** Processing time per order. */
  handlerMs: number;
  /** Probability that an attempt fails with a transient (retryable) error. */
  failRate: number;
  /** When false the "bug" behind poison orders is fixed: they process like any other. */
  poisonSwitch: boolean;
}

export type Handler = (order: Order, attempt: number) => Promise<void>;

export function simulatedHandler(config: HandlerConfig, rng: Rng): Handler {
  return async (order, attempt) => {
    if (config.poisonSwitch && order.simulate) {
      if (order.simulate === "crash") process.kill(process.pid, "SIGKILL");
      if (order.simulate === "fatal") throw new NonRetryableError(`order ${order.id} cannot be processed (fatal)`);
      throw new PoisonOrderError(`order ${order.id} rejected on attempt ${attempt} (poison)`);
    }
    if (config.handlerMs > 0) await sleep(config.handlerMs);
    if (config.failRate > 0 && rng() < config.failRate) {
      throw new TransientError(`transient failure of order ${order.id} on attempt ${attempt}`);
    }
  };
}
