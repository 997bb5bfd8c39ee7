/**
 * Every patch orderq makes to the NATS client's internals, in one place (pinned @nats-io/nats-core and
 * @nats-io/jetstream 3.3.1). Each one checks the shape it relies on at run time and does nothing when
 * the shape differs: the client then behaves as shipped, correct and a little slower. The canary tests
 * in test/integration/client-internals.test.ts fail when a client upgrade turns a patch off.
 *
 * The types come from the client's declared internal entry point (`@nats-io/nats-core/internal`), as
 * type-only imports. The pull consumer's implementation is not exported there, so its two fields are
 * reached through casts: `sub` in `withdrawPull`, `callback` in `fetchTo`.
 */
import { headers, type MsgHdrs, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import type { ConsumeCallback, Consumer, ConsumerMessages, FetchMessages, JsMsg } from "@nats-io/jetstream";
import type { MsgHdrsImpl, NatsConnectionImpl, ProtocolHandler } from "@nats-io/nats-core/internal";

// ---------------------------------------------------------------------------------------------------
// Write coalescing: fewer, larger socket writes on the hot paths (worker, producer).
//
// The client flushes its outbound buffer in a microtask queued by the first command after a flush.
// In a worker, every order's commit and ack continue in their own microtasks, so the flush runs between
// them and the socket sees about one write per command. Flushing once per event-loop turn (setImmediate)
// sends everything a turn produced in one write. This replaces the protocol handler's sendCommand.

/** The protocol handler's members the patch uses; flushPending is private in the declaration. */
type Protocol = Pick<ProtocolHandler, "sendCommand" | "outbound" | "pendingLimit"> & { flushPending(): void };

function protocolOf(nc: NatsConnection): Protocol | undefined {
  const protocol = (nc as Partial<NatsConnectionImpl>).protocol as Partial<Protocol> | undefined;
  const ok =
    typeof protocol?.sendCommand === "function" &&
    typeof protocol.flushPending === "function" &&
    typeof protocol.outbound?.fill === "function" &&
    typeof protocol.outbound.size === "function" &&
    typeof protocol.pendingLimit === "number";
  return ok ? (protocol as Protocol) : undefined;
}

/** Returns whether coalescing is on for this connection. */
export function coalesceWrites(nc: NatsConnection): boolean {
  const protocol = protocolOf(nc);
  if (!protocol) return false;
  const encoder = new TextEncoder();
  let scheduled = false;
  protocol.sendCommand = function (this: Protocol, cmd: string | Uint8Array, ...payloads: Uint8Array[]) {
    this.outbound.fill(typeof cmd === "string" ? encoder.encode(cmd) : cmd, ...payloads);
    if (this.outbound.size() >= this.pendingLimit) {
      this.flushPending(); // as shipped: a large backlog is written at once
    } else if (!scheduled) {
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        this.flushPending();
      });
    }
  };
  return true;
}

// ---------------------------------------------------------------------------------------------------
// Pull withdrawal: end an open pull without stranding what the server already sent for it.
//
// `ConsumerMessages.stop()` unsubscribes the pull's inbox at once: an order the server sent just before
// it learnt of the unsubscription is dropped by the client, and sits delivered and unacked until its
// ack wait runs out. Draining the inbox's subscription instead sends the unsubscription, then still
// hands over whatever arrives before the server's answer to the next ping; the library ends the pull
// after those (its iterator, or closed() for a pull handed over by callback). nats-server 2.9 then
// drops the pull request itself: it delivers only to a pull whose reply subject still has interest.

/** Returns false when this client's pull has no drainable subscription (the pull then expires). */
export function withdrawPull(pull: ConsumerMessages): boolean {
  // PullConsumerMessagesImpl.sub: public on the implementation, not on the ConsumerMessages interface.
  const sub = (pull as ConsumerMessages & { sub?: Partial<Pick<Subscription, "drain">> }).sub;
  if (typeof sub?.drain !== "function") return false;
  sub.drain().catch(() => {
    // The connection is closing or gone: the pull ends with it.
  });
  return true;
}

// ---------------------------------------------------------------------------------------------------
// A pull's orders handed over by callback, not by its async iterator.
//
// Iterating a fetch() costs promises and microtasks per order. The pull's implementation
// (PullConsumerMessagesImpl) takes a `callback` for fetch() as it does for consume(), and then calls
// it from the subscription's own callback; only ConsumeOptions declares it. The pull still ends as
// usual, and closed() then resolves (with the Error that ended it, if one did).

/**
 * `consumer.fetch(options)` with each order handed to `deliver` as it arrives. Resolves with the pull
 * (for closed() and withdrawPull); rejects as fetch() does. On a client whose pull does not take the
 * callback, the pull is iterated here instead and `deliver` called the same way.
 */
export async function fetchTo(consumer: Consumer, options: FetchMessages, deliver: (msg: JsMsg) => void): Promise<ConsumerMessages> {
  const withCallback: FetchMessages & ConsumeCallback = { ...options, callback: deliver };
  const pull = await consumer.fetch(withCallback);
  if ((pull as ConsumerMessages & { callback?: unknown }).callback !== deliver) {
    void (async () => {
      for await (const msg of pull) {
        try {
          deliver(msg);
        } catch (err) {
          // As the client does with a callback that throws: the pull ends, and closed() says why.
          pull.stop(err instanceof Error ? err : new Error(String(err)));
        }
      }
    })().catch(() => {
      // The pull ended with an error: closed() reports it.
    });
  }
  return pull;
}

// ---------------------------------------------------------------------------------------------------
// Constant headers: headers that never change, encoded once.
//
// The client encodes a publish's headers again on every call (toString(), then TextEncoder), and the
// garbage costs more than the encoding. This replaces the headers object's own encode(), which the
// client calls when it publishes. The object refuses changes afterwards, since its cached bytes would
// not follow them.

export function constantHeaders(values: Record<string, string>): MsgHdrs {
  const h = headers();
  for (const [key, value] of Object.entries(values)) h.set(key, value);
  const impl = h as Partial<Pick<MsgHdrsImpl, "encode">>;
  if (typeof impl.encode === "function") {
    const bytes = impl.encode();
    impl.encode = () => bytes;
  }
  const refuse = () => {
    throw new TypeError("constant headers cannot be changed");
  };
  h.set = h.append = h.delete = refuse;
  return h;
}
