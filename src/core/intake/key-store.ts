/**
 * The gateway's idempotency key store (DESIGN.md, Intake): a KV bucket keyed by the idempotency key
 * (the order id), whose value is the payload's fingerprint and, once the order is stored, the answer
 * given for it. The bucket's max age is the key retention (`topology ensure`), so a retry a day later
 * is still recognised, long after JetStream's duplicate window forgot the message id.
 *
 * A request first claims its key with a create-if-absent write (the one atomic step that lets exactly
 * one of two concurrent requests publish), publishes, then replaces the claim with its answer. A claim
 * carries the time it was made: a claim older than the lease belongs to a gateway that died or lost
 * the broker mid-request, and the next request with the same key and payload takes it over (a
 * compare-and-set on the claim's revision, so only one does). Clocks of gateways sharing a bucket are
 * assumed to agree within a fraction of the lease.
 *
 * A claim, also on a released key (release purges the claim, as the ledger's release does, rather
 * than leaving a delete marker), expects a last sequence of 0, which nats-server checks when it applies
 * the write. A take-over and the answer expect the revision they read, which on a clustered bucket under
 * nats-server 2.9.10 several concurrent writers can all pass (DESIGN.md, Facts). What that costs is a
 * second publish with the same Nats-Msg-Id, absorbed by the duplicate window or, after it, by the
 * ledger: never a second commit.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { CREATE_ONLY, expectLastSequence, isWrongLastSequence, lastKeyWrite } from "../nats/kv-keys.js";
import { kvStreamName, type Names } from "../nats/names.js";
import { PubAckRequests } from "../nats/pub-acks.js";

/** What the gateway answered for a key, given again to every retry with the same payload. */
export interface StoredAnswer {
  /** HTTP status (202). */
  status: number;
  body: AcceptedBody;
}

/** The body of a 202: the order id, and where JetStream stored it. */
export interface AcceptedBody {
  id: string;
  /** Sequence of the order's message in the orders stream. */
  seq: number;
  stream: string;
}

/** One key's record in the bucket (JSON). */
export interface KeyRecord {
  state: "pending" | "done";
  /** SHA-256 of the payload's canonical JSON (idempotency.ts). */
  fingerprint: string;
  /** The gateway that wrote the record (its `--gateway-id`), for people reading the bucket. */
  gateway: string;
  /** When the record was written, ms since the epoch (the gateway's clock). */
  at: number;
  answer?: StoredAnswer;
}

/**
 * The outcome of a claim: `claimed` (publish, then complete() or release() with the revision);
 * `replay` (the same key and payload were answered before: give that answer again); `in-flight`
 * (another request with this key is being published now: 409); `mismatch` (the key was used with
 * another payload: 422).
 */
export type Claim = { kind: "claimed"; revision: number } | { kind: "replay"; answer: StoredAnswer } | { kind: "in-flight" } | { kind: "mismatch" };

/** Claims lost to a concurrent writer are retried this often before the request is told 409. */
const CLAIM_TRIES = 3;

export interface KeyStoreOptions {
  /** Per-request timeout of the bucket's writes and reads (ms). */
  timeoutMs: number;
  /** How long a claim holds before another request may take it over (ms). */
  leaseMs: number;
  /** Written into each record. */
  gateway: string;
  /** The clock (ms since the epoch); tests pass their own. */
  now?: () => number;
}

export class KeyStore {
  private readonly now: () => number;

  private readonly keyPrefix: string;

  private constructor(
    private readonly kv: KV,
    private readonly jsm: JetStreamManager,
    private readonly names: Names,
    private readonly options: KeyStoreOptions,
    /** The two writes of every request (first claim, answer): see claim(). */
    private readonly publisher: PubAckRequests,
  ) {
    this.now = options.now ?? Date.now;
    this.keyPrefix = `$KV.${names.intakeBucket}.`;
  }

  /** Opens the bucket `names.intakeBucket`; throws (JetStream's not-found error) when it does not exist. */
  static async open(nc: NatsConnection, names: Names, options: KeyStoreOptions): Promise<KeyStore> {
    const js = jetstream(nc, { timeout: options.timeoutMs });
    const kv = await new Kvm(js).open(names.intakeBucket);
    const jsm = await jetstreamManager(nc, { checkAPI: false, timeout: options.timeoutMs });
    return new KeyStore(kv, jsm, names, options, new PubAckRequests(nc, options.timeoutMs));
  }

  /** Ends the writes' publisher (its subscription and timer); writes still waiting fail. */
  close(): void {
    this.publisher.close();
  }

  /**
   * Claims `key` for a request whose payload has `fingerprint`. Throws what the client threw when the
   * bucket cannot be written or read (timeout, no connection): the caller answers 503.
   */
  async claim(key: string, fingerprint: string): Promise<Claim> {
    const pending = (): string =>
      JSON.stringify({ state: "pending", fingerprint, gateway: this.options.gateway, at: this.now() } satisfies KeyRecord);
    // The usual case, a key never seen, is the first write kv.create() makes (expect last sequence 0),
    // sent as a plain PUB whose PubAck comes back on the shared subscription: kv.create() goes through
    // js.publish(), whose request costs a timer and an Error with a stack (pub-acks.ts). Any refusal
    // falls through to kv.create(), which also re-creates a key over a delete marker (an older orderq released with one).
    try {
      return { kind: "claimed", revision: (await this.publisher.publish(this.keyPrefix + key, pending(), CREATE_ONLY)).seq };
    } catch (err) {
      if (!isWrongLastSequence(err)) throw err;
    }
    for (let tries = 1; ; tries++) {
      try {
        // kv.create also re-creates a key whose last entry is a delete marker (an older orderq released with one).
        return { kind: "claimed", revision: await this.kv.create(key, pending()) };
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
      }
      const current = await this.read(key);
      if (!current) {
        if (tries >= CLAIM_TRIES) return { kind: "in-flight" };
        continue; // released or expired between the create and the read
      }
      const { record, revision } = current;
      if (record.fingerprint !== fingerprint) return { kind: "mismatch" };
      if (record.state === "done" && record.answer) return { kind: "replay", answer: record.answer };
      if (this.now() - record.at < this.options.leaseMs) return { kind: "in-flight" };
      try {
        return { kind: "claimed", revision: await this.kv.update(key, pending(), revision) };
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
        if (tries >= CLAIM_TRIES) return { kind: "in-flight" };
      }
    }
  }

  /**
   * Replaces the claim at `revision` with the answer. False when the claim was taken over meanwhile
   * (the other request stores the same answer: one message id, one sequence inside the window).
   */
  async complete(key: string, revision: number, fingerprint: string, answer: StoredAnswer): Promise<boolean> {
    const record: KeyRecord = { state: "done", fingerprint, gateway: this.options.gateway, at: this.now(), answer };
    // kv.update() as a plain PUB expecting the claim's revision, for the reason given in claim().
    try {
      await this.publisher.publish(this.keyPrefix + key, JSON.stringify(record), expectLastSequence(revision));
      return true;
    } catch (err) {
      if (isWrongLastSequence(err)) return false;
      throw err;
    }
  }

  /**
   * Drops the claim at `revision` after a failed publish, so a retry need not wait for the lease. The
   * purge reaches no further than `revision`: a claim taken over since (a later write) is kept.
   */
  async release(key: string, revision: number): Promise<void> {
    await this.jsm.streams.purge(kvStreamName(this.names.intakeBucket), { filter: `$KV.${this.names.intakeBucket}.${key}`, seq: revision + 1 });
  }

  /**
   * The key's record and its revision, read from the stream leader (as the ledger reads: a direct get
   * may be answered by a replica that is behind). Undefined when the key is absent, deleted or expired.
   */
  async read(key: string): Promise<{ record: KeyRecord; revision: number } | undefined> {
    const last = await lastKeyWrite<KeyRecord>(this.jsm, this.names.intakeBucket, key);
    return last?.value && { record: last.value, revision: last.seq };
  }
}
