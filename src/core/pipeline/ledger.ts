/**
 * The ledger: a KV bucket keyed by order id. Its create-if-absent is the commit, the one atomic write
 * that makes an order's outcome real; a second delivery's create fails and is counted, not applied.
 *
 * Dead-lettering claims the key the same way (result "dead-lettered") before the DLQ copy, so a worker
 * that wakes up after the DLQ mover took its order cannot commit it too: one key, one outcome. Every
 * write expects the key never written (last subject sequence 0), the one expectation a clustered
 * nats-server 2.9.10 checks when it applies the write; a replay clears a claim by purging the key.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { CREATE_ONLY, isWrongLastSequence, lastKeyWrite } from "../nats/kv-keys.js";
import { isPayloadClaim, type Outcome, type OutcomeStore, type RecordResult } from "./outcome-store.js";
import { kvStreamName, type Names } from "../nats/names.js";
import { PubAckRequests } from "../nats/pub-acks.js";
import { readStream } from "../nats/stream-reader.js";

export class Ledger implements OutcomeStore {
  private constructor(
    private readonly kv: KV,
    private readonly jsm: JetStreamManager,
    private readonly bucket: string,
    private readonly stream: string,
    private readonly publisher: PubAckRequests,
    private readonly keyPrefix: string,
    /** Negative control only: a plain put, so a redelivery writes the key again. */
    private readonly unsafe: boolean,
  ) {}

  static async open(nc: NatsConnection, names: Names, unsafe = false): Promise<Ledger> {
    const kv = await new Kvm(nc).open(names.ledgerBucket);
    const jsm = await jetstreamManager(nc, { checkAPI: false });
    return new Ledger(kv, jsm, names.ledgerBucket, kvStreamName(names.ledgerBucket), new PubAckRequests(nc), `$KV.${names.ledgerBucket}.`, unsafe);
  }

  /** Ends the hot-path publisher (its subscription and timer); what is still waiting fails. */
  async close(): Promise<void> {
    this.publisher.close();
  }

  /**
   * The key's outcome, read from the stream leader (lastKeyWrite): a replica just back from a crash,
   * answering a direct get, would say "no such key" for an order committed long ago, and a dead-letter
   * move would copy a committed order to the DLQ.
   */
  async get(orderId: string): Promise<Outcome | undefined> {
    return (await this.lastWrite(orderId))?.outcome;
  }

  /**
   * The key's last message: its stream sequence, and its outcome unless it is a delete or purge marker
   * (a KV-Operation header, no data: the key holds nothing now; an older orderq released claims so).
   */
  private async lastWrite(orderId: string): Promise<{ seq: number; outcome?: Outcome } | undefined> {
    const last = await lastKeyWrite<Outcome>(this.jsm, this.bucket, orderId);
    return last && { seq: last.seq, outcome: last.value };
  }

  /**
   * Create-if-absent (a plain put in unsafe mode). `orderId` is a validated order id or a
   * payloadClaimKey, so it is a valid KV key as it is. Every write expects the key's last sequence to
   * be 0 (never written, or cleared by releaseDeadLetter): on a clustered stream nats-server 2.9.10
   * checks a non-zero expectation before replication, where racing writers can all pass, but 0 when
   * the write is applied, in the log's one order. A delete marker an older orderq left on release is
   * cleared here the same way, and the create tried again. Throws when the key keeps changing.
   */
  async record(orderId: string, outcome: Outcome): Promise<RecordResult> {
    const value = JSON.stringify(outcome);
    if (this.unsafe) return { written: true, seq: await this.kv.put(orderId, value) };
    for (let tries = 1; ; tries++) {
      try {
        return { written: true, seq: (await this.publisher.publish(this.keyPrefix + orderId, value, CREATE_ONLY)).seq };
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
      }
      const last = await this.lastWrite(orderId);
      if (last?.outcome) return { written: false, existing: last.outcome };
      if (tries >= 3) throw new Error(`the ledger key ${orderId} changed under three tries to create it`);
      // Nothing there (cleared in between), or a marker: clear it, then create.
      if (last) await this.clearUpTo(orderId, last.seq);
    }
  }

  /**
   * Before a DLQ replay: clears a dead-letter claim so the replayed order can be committed.
   * Returns the committed outcome instead when the order was processed (replay must be refused).
   */
  async releaseDeadLetter(orderId: string): Promise<Outcome | undefined> {
    const last = await this.lastWrite(orderId);
    if (!last?.outcome) return undefined;
    if (last.outcome.result === "committed") return last.outcome;
    await this.clearUpTo(orderId, last.seq);
    return undefined;
  }

  /**
   * Purges the key's messages up to and including `seq`, so its last subject sequence is 0 again and
   * the next create expects 0. Bounded by `seq`, a clear racing a commit made after it (a second
   * replay of the same entry) cannot remove that commit. Not a delete: re-creating a key over a delete
   * marker means expecting the marker's sequence. The cleared claim leaves the ledger's history; the
   * DLQ entry and the replay's new message say what happened.
   */
  private async clearUpTo(orderId: string, seq: number): Promise<void> {
    await this.jsm.streams.purge(this.stream, { filter: this.keyPrefix + orderId, seq: seq + 1 });
  }
}

export interface LedgerWrite {
  orderId: string;
  seq: number;
  outcome: Outcome;
  /** When the server stored the write (ms since the epoch, µs precision): the commit time. */
  time?: number;
}

/**
 * Every write the ledger still holds for an order (from its stream, so a second write of a key is
 * visible), from its stream sequence `fromSeq` on when given; writes older than the horizon are gone.
 * The claims of payloads without an order id (isPayloadClaim) are left out: they are no order's
 * outcome, and their DLQ entries say what became of them.
 */
export async function readLedgerWrites(nc: NatsConnection, names: Names, fromSeq?: number): Promise<LedgerWrite[]> {
  const prefix = `$KV.${names.ledgerBucket}.`;
  const writes: LedgerWrite[] = [];
  for await (const msg of readStream(jetstream(nc), kvStreamName(names.ledgerBucket), undefined, fromSeq)) {
    if (msg.data.length === 0) continue; // delete or purge marker
    if (isPayloadClaim(msg.subject.slice(prefix.length))) continue;
    const time = Number(msg.timestampNanos / 1000n) / 1000;
    writes.push({ orderId: msg.subject.slice(prefix.length), seq: msg.seq, outcome: msg.json<Outcome>(), time });
  }
  return writes;
}

/** Commits per order id: the checker's view of "committed more than once". */
export function countCommits(writes: LedgerWrite[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const w of writes) {
    if (w.outcome.result === "committed") counts.set(w.orderId, (counts.get(w.orderId) ?? 0) + 1);
  }
  return counts;
}
