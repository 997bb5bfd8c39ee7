/**
 * Failed attempts, kept so that a DLQ entry can say why. One KV key per stream sequence; the bucket's
 * history holds one revision per attempt, so recording is a single append with no read-modify-write.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, type KV } from "@nats-io/kv";
import type { Names } from "../nats/names.js";

export interface AttemptRecord {
  orderId?: string;
  streamSeq: number;
  attempt: number;
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
