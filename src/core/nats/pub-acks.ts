/**
 * JetStream publishes for the hot paths (the worker's ledger commit, the producer), with every PubAck
 * collected on one subscription.
 *
 * Why not `js.publish()`: each of its requests builds a RequestOne with its own timer and, on success,
 * cancels it by allocating an Error with a captured stack: a large share of the hot paths' CPU, plus
 * the garbage (README, Performance). Here a request is a map entry keyed
 * by a counter in its reply subject; one timer sweeps the expired ones. The wire protocol is the same:
 * a PUB with a reply subject, answered by a PubAck or a JetStream API error (or a 503 status when no
 * stream listens).
 */
import { createInbox, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { JetStreamApiError } from "@nats-io/jetstream";

export interface PubAck {
  stream: string;
  seq: number;
  duplicate?: boolean;
}

/** No stream listens on the subject (a 503 "no responders" status): the message was certainly not stored. */
export class NoStreamError extends Error {
  // No subject in the message: a worker logs each distinct message once in a while, and a ledger key
  // per order would make every one distinct (a flood of lines while a stream leader moves).
  constructor() {
    super("no responders: no stream for this subject");
    this.name = "NoStreamError";
  }
}

interface Waiting {
  resolve: (ack: PubAck) => void;
  reject: (err: Error) => void;
  deadline: number;
}

export class PubAckRequests {
  private readonly prefix = `${createInbox()}.`;
  private readonly waiting = new Map<number, Waiting>();
  private readonly sub: Subscription;
  private readonly sweeper: NodeJS.Timeout;
  private next = 0;
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs = 5_000,
  ) {
    this.sub = nc.subscribe(`${this.prefix}*`, { callback: (err, msg) => (err ? this.failAll(err) : this.answer(msg)) });
    // A request fails between timeoutMs and timeoutMs + a fifth of it (at most a second later).
    this.sweeper = setInterval(() => this.expire(), Math.max(10, Math.min(1000, timeoutMs / 5)));
    this.sweeper.unref();
  }

  publish(subject: string, payload: Uint8Array | string, headers?: MsgHdrs): Promise<PubAck> {
    // After close() nothing would answer or expire a request: refuse it at once.
    if (this.closed) return Promise.reject(new Error("publisher closed"));
    const id = this.next++;
    return new Promise<PubAck>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, deadline: performance.now() + this.timeoutMs });
      try {
        this.nc.publish(subject, payload, { reply: this.prefix + id, headers });
      } catch (err) {
        this.waiting.delete(id);
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    this.sub.unsubscribe();
    this.failAll(new Error("publisher closed"));
  }

  private answer(msg: Msg): void {
    const id = Number(msg.subject.slice(this.prefix.length));
    const waiting = this.waiting.get(id);
    if (!waiting) return; // already timed out
    this.waiting.delete(id);
    if (msg.headers?.hasError) {
      waiting.reject(msg.headers.code === 503 ? new NoStreamError() : new Error(`${msg.headers.code} ${msg.headers.description}`));
      return;
    }
    try {
      const reply = msg.json<PubAck & { error?: { code: number; err_code: number; description: string } }>();
      if (reply.error) waiting.reject(new JetStreamApiError(reply.error));
      else waiting.resolve(reply);
    } catch (err) {
      waiting.reject(err as Error);
    }
  }

  private expire(): void {
    const now = performance.now();
    // Every request has the same timeout and a monotonic clock, so the map (in insertion order) is
    // ordered by deadline.
    for (const [id, waiting] of this.waiting) {
      if (waiting.deadline > now) break;
      this.waiting.delete(id);
      waiting.reject(new Error(`timeout: no PubAck within ${this.timeoutMs} ms`));
    }
  }

  private failAll(err: Error): void {
    for (const waiting of this.waiting.values()) waiting.reject(err);
    this.waiting.clear();
  }
}
