/**
 * Where an order is, for `GET /orders/{id}`, in the gateway's words: read through the OrderLocator
 * (ops/order-lookup.ts) from the ledger of record (the KV ledger, or the PostgreSQL inbox in inbox
 * mode) and the orders stream, with the gateway's key store saying where the order was stored.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { OutcomeStore } from "../pipeline/outcome-store.js";
import type { Names } from "../nats/names.js";
import { OrderLocator } from "../ops/order-lookup.js";
import type { KeyStore } from "./key-store.js";

/**
 * - `accepted`: stored in the orders stream (202 given), not yet committed nor dead-lettered: waiting
 *   for a worker or being processed. `inStream` says whether the stream still holds it.
 * - `committed`: the ledger's outcome (worker, attempt, time).
 * - `dead-lettered`: the ledger's dead-letter claim (reason and the last error).
 */
export type OrderStatus =
  | { id: string; state: "accepted"; seq: number; stream: string; inStream: boolean }
  | { id: string; state: "committed"; worker: string; attempt: number; at: string; seq: number }
  | { id: string; state: "dead-lettered"; reason?: string; lastError?: string; worker: string; attempt: number; at: string; seq: number };

export class OrderStatusReader {
  private constructor(
    private readonly locator: OrderLocator,
    private readonly names: Names,
    private readonly keys: KeyStore,
  ) {}

  static async open(nc: NatsConnection, names: Names, ledger: OutcomeStore, keys: KeyStore, timeoutMs: number): Promise<OrderStatusReader> {
    return new OrderStatusReader(await OrderLocator.open(nc, names, { ledger, timeoutMs }), names, keys);
  }

  /**
   * The order's status; undefined when neither the ledger nor the key store knows it (never received
   * through a gateway, still being published, or forgotten after the key retention). Throws when
   * JetStream or the inbox does not answer.
   */
  async read(id: string): Promise<OrderStatus | undefined> {
    const outcome = await this.fromLedger(id);
    if (outcome) return outcome;
    const entry = await this.keys.read(id);
    const answer = entry?.record.state === "done" ? entry.record.answer : undefined;
    if (!answer) return undefined;
    const inStream = await this.locator.holds(this.names.stream, answer.body.seq);
    // Acked between the two reads: the ledger has it now (a worker commits before it acks).
    if (!inStream) {
      const late = await this.fromLedger(id);
      if (late) return late;
    }
    return { id, state: "accepted", seq: answer.body.seq, stream: answer.body.stream, inStream };
  }

  private async fromLedger(id: string): Promise<OrderStatus | undefined> {
    const o = await this.locator.outcome(id);
    if (!o) return undefined;
    const common = { id, worker: o.worker, attempt: o.attempt, at: o.at, seq: o.streamSeq };
    if (o.result === "committed") return { ...common, state: "committed" };
    return { ...common, state: "dead-lettered", reason: o.reason, lastError: o.error };
  }
}
