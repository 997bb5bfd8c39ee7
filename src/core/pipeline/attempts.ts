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
   * Whether the failure of delivery `attempt` of ORDERS message `streamSeq` (main lane) was recorded:
   * the last revision of the key is the latest failure, since failures are recorded in order and a
   * redelivery is only made after the previous delivery ended. One read, only on a redelivery.
   * A stale answer (a replica behind) says "not recorded": the order is then treated as a suspect,
   * which is the safe direction (it is retried alone, not charged).
   */
  async recordedFailure(streamSeq: number, attempt: number): Promise<boolean> {
    const entry = await this.kv.get(String(streamSeq));
    if (!entry || entry.operation !== "PUT") return false;
    const last = entry.json<AttemptRecord>();
    return last.lane === undefined && last.attempt === attempt;
  }

  /** Every recorded attempt of one stream message, oldest first. */
  async list(streamSeq: number): Promise<AttemptRecord[]> {
    const out: AttemptRecord[] = [];
    const iter = await this.kv.history({ key: String(streamSeq) });
    for await (const entry of iter) {
      if (entry.operation === "PUT") out.push(entry.json<AttemptRecord>());
    }
    return out.sort((a, b) => a.attempt - b.attempt);
  }
}
