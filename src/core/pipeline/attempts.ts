/**
 * Failed attempts, kept so that a DLQ entry can say why. One KV key per stream sequence; the bucket's
 * history holds one revision per attempt, so recording is a single append with no read-modify-write.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, type KV } from "@nats-io/kv";
import type { Names } from "../nats/names.js";

export interface AttemptRecord {
  orderId?: string;
  /** The order's sequence in ORDERS (also for an attempt made in the quarantine lane). */
  streamSeq: number;
  /** The delivery count of the lane the attempt was made in (the quarantine lane counts from 1 again). */
  attempt: number;
  /** Set for an attempt made in the quarantine lane. */
  lane?: "quarantine";
  /**
   * Not a failure: the delivery was handed back because another delivery of the order held it
   * (inbox mode). Recorded so that the next delivery does not take it for a crash; left out of list().
   */
  deferred?: true;
  worker: string;
  error: string;
  errorClass: string;
  at: string;
}

export class AttemptLog {
  private constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection, names: Names): Promise<AttemptLog> {
    return new AttemptLog(await new Kvm(nc).open(names.attemptsBucket));
  }

  async record(attempt: AttemptRecord): Promise<void> {
    await this.kv.put(String(attempt.streamSeq), JSON.stringify(attempt));
  }

  /**
   * Whether delivery `attempt` of ORDERS message `streamSeq` (main lane) ended with a record — a
   * failure or a deferral — rather than with its worker dying or losing the lease. The last revision
   * of the key is the latest record, since records are written in order and a redelivery is only made
   * after the previous delivery ended. One read, only on a redelivery. A stale answer (a replica
   * behind) says "no record": the order is then treated as a suspect, which is the safe direction
   * (it is retried alone, not charged).
   */
  async endedWithRecord(streamSeq: number, attempt: number): Promise<boolean> {
    const entry = await this.kv.get(String(streamSeq));
    if (!entry || entry.operation !== "PUT") return false;
    const last = entry.json<AttemptRecord>();
    return last.lane === undefined && last.attempt === attempt;
  }

  /** How many deliveries of the quarantine lane ended with a record (failure or deferral) for `streamSeq`. */
  async laneRecords(streamSeq: number): Promise<number> {
    return (await this.all(streamSeq)).filter((a) => a.lane === "quarantine").length;
  }

  /** Every failed attempt of one stream message, oldest first (deferrals left out: they are not failures). */
  async list(streamSeq: number): Promise<AttemptRecord[]> {
    return (await this.all(streamSeq)).filter((a) => !a.deferred);
  }

  private async all(streamSeq: number): Promise<AttemptRecord[]> {
    const out: AttemptRecord[] = [];
    const iter = await this.kv.history({ key: String(streamSeq) });
    for await (const entry of iter) {
      if (entry.operation === "PUT") out.push(entry.json<AttemptRecord>());
    }
    return out.sort((a, b) => a.attempt - b.attempt);
  }
}
