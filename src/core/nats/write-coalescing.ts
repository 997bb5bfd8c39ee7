/**
 * Fewer, larger socket writes for the hot paths (worker, producer).
 *
 * The client flushes its outbound buffer in a microtask queued by the first command after a flush.
 * In a worker, every order's commit and ack continue in their own microtasks, so the flush runs
 * between them and the socket sees about one write per command: `writeBuffer` was a fifth of the
 * worker's CPU profile. Flushing once per event-loop turn (setImmediate) sends everything a turn
 * produced in one write. Measured on 30,000 orders: worker CPU 5.4–5.8 s → 4.1–4.9 s, wall 25% less.
 *
 * This replaces one method of the client's protocol handler (pinned @nats-io/nats-core 3.3.1). If
 * that shape ever changes, nothing is replaced and the client behaves as shipped.
 */
import type { NatsConnection } from "@nats-io/transport-node";

interface ProtocolInternals {
  sendCommand(cmd: string | Uint8Array, ...payloads: Uint8Array[]): void;
  flushPending(): void;
  outbound: { fill(a: Uint8Array, ...bufs: Uint8Array[]): void; size(): number };
  pendingLimit: number;
}

function internals(nc: NatsConnection): ProtocolInternals | undefined {
  const protocol = (nc as unknown as { protocol?: Partial<ProtocolInternals> }).protocol;
  const ok =
    typeof protocol?.sendCommand === "function" &&
    typeof protocol.flushPending === "function" &&
    typeof protocol.outbound?.fill === "function" &&
    typeof protocol.outbound.size === "function" &&
    typeof protocol.pendingLimit === "number";
  return ok ? (protocol as ProtocolInternals) : undefined;
}

/** Returns whether coalescing is on for this connection. */
export function coalesceWrites(nc: NatsConnection): boolean {
  const protocol = internals(nc);
  if (!protocol) return false;
  const encoder = new TextEncoder();
  let scheduled = false;
  protocol.sendCommand = function (cmd, ...payloads) {
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
