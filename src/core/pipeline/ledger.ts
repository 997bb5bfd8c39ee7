/**
 * The ledger: a KV bucket keyed by order id. Its create-if-absent is the commit, the one atomic write
 * that makes an order's outcome real; a second delivery's create fails and is counted, not applied.
 *
 * Dead-lettering claims the key the same way (result "dead-lettered") before the DLQ copy, so a worker
 * that wakes up after the DLQ mover took its order cannot commit it too: one key, one outcome.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { JetStreamApiCodes, JetStreamApiError, jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { constantHeaders } from "../nats/client-internals.js";
import type { Outcome, OutcomeStore, RecordResult } from "./outcome-store.js";
import { kvStreamName, type Names } from "../nats/names.js";
import { PubAckRequests } from "../nats/pub-acks.js";
import { readStream } from "../nats/stream-reader.js";

/** JetStream's "wrong last sequence" (and its newer variant): the key exists already. */
const WRONG_LAST_SEQUENCE: number[] = [JetStreamApiCodes.StreamWrongLastSequence, JetStreamApiCodes.StreamWrongLastSequenceUnknown];

/** What kv.create() sends: the write succeeds only if the key has never been written. */
const CREATE_ONLY = constantHeaders({ "Nats-Expected-Last-Subject-Sequence": "0" });

export class Ledger implements OutcomeStore {
  private constructor(
    private readonly kv: KV,
    private readonly jsm: JetStreamManager,
    private readonly stream: string,
    private readonly publisher: PubAckRequests,
    private readonly keyPrefix: string,
    /** Negative control only: a plain put, so a redelivery writes the key again. */
    private readonly unsafe: boolean,
  ) {}

  static async open(nc: NatsConnection, names: Names, unsafe = false): Promise<Ledger> {
    const kv = await new Kvm(nc).open(names.ledgerBucket);
    const jsm = await jetstreamManager(nc, { checkAPI: false });
    return new Ledger(kv, jsm, kvStreamName(names.ledgerBucket), new PubAckRequests(nc), `$KV.${names.ledgerBucket}.`, unsafe);
  }

  /** Ends the hot-path publisher (its subscription and timer); what is still waiting fails. */
  async close(): Promise<void> {
    this.publisher.close();
  }

  /**
   * The key's outcome, read from the stream leader. Not kv.get(): on a replicated bucket (allow_direct)
   * that is a direct get, which nats-server 2.9 lets every replica answer — a follower joins once it is
   * 90% caught up — so a node just back from a crash answers "no such key" for an order committed
   * long ago, and a dead-letter move would copy a committed order to the DLQ.
   */
  async get(orderId: string): Promise<Outcome | undefined> {
    return (await this.latest(orderId))?.outcome;
  }

  private async latest(orderId: string): Promise<{ outcome: Outcome; revision: number } | undefined> {
    const msg = await this.jsm.streams.getMessage(this.stream, { last_by_subj: this.keyPrefix + orderId });
    // A delete or purge marker (KV-Operation header, no data) means the key holds nothing now.
    if (!msg || msg.header?.get("KV-Operation") || msg.data.length === 0) return undefined;
    return { outcome: msg.json<Outcome>(), revision: msg.seq };
  }

  /**
   * Create-if-absent (a plain put in unsafe mode). `orderId` is a validated order id, so it is a
   * valid KV key as it is. The first try is kv.create()'s own write sent on the hot-path publisher;
   * when the key exists, kv.create() itself decides, since a key whose last entry is a delete marker
   * (a dead-letter claim released for replay) may be created again.
   */
  async record(orderId: string, outcome: Outcome): Promise<RecordResult> {
    const value = JSON.stringify(outcome);
    if (this.unsafe) return { written: true, seq: await this.kv.put(orderId, value) };
    try {
      return { written: true, seq: (await this.publisher.publish(this.keyPrefix + orderId, value, CREATE_ONLY)).seq };
    } catch (err) {
      if (!isWrongLastSequence(err)) throw err;
    }
    try {
      return { written: true, seq: await this.kv.create(orderId, value) };
    } catch (err) {
      if (isWrongLastSequence(err)) return { written: false, existing: await this.get(orderId) };
      throw err;
    }
  }

  /**
   * Before a DLQ replay: drops a dead-letter claim so the replayed order can be committed.
   * Returns the committed outcome instead when the order was processed (replay must be refused).
   */
  async releaseDeadLetter(orderId: string): Promise<Outcome | undefined> {
    const entry = await this.latest(orderId);
    if (!entry) return undefined;
    if (entry.outcome.result === "committed") return entry.outcome;
    // The revision guard makes a concurrent change fail instead of being deleted blindly.
    await this.kv.delete(orderId, { previousSeq: entry.revision });
    return undefined;
  }
}

export interface LedgerWrite {
  orderId: string;
  seq: number;
  outcome: Outcome;
  /** When the server stored the write (ms since the epoch, µs precision): the commit time. */
  time?: number;
}

function isWrongLastSequence(err: unknown): boolean {
  return err instanceof JetStreamApiError && WRONG_LAST_SEQUENCE.includes(err.code);
}

/**
 * Every write the ledger still holds (from its stream, so a second write of a key is visible), from
 * its stream sequence `fromSeq` on when given. Writes older than the horizon are gone.
 */
export async function readLedgerWrites(nc: NatsConnection, names: Names, fromSeq?: number): Promise<LedgerWrite[]> {
  const prefix = `$KV.${names.ledgerBucket}.`;
  const writes: LedgerWrite[] = [];
  for await (const msg of readStream(jetstream(nc), kvStreamName(names.ledgerBucket), undefined, fromSeq)) {
    if (msg.data.length === 0) continue; // delete or purge marker
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
