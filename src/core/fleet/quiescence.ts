/** "Quiet": nothing left to deliver, nothing delivered and unacked, no advisory waiting for a mover, no suspect in quarantine. */
import type { JetStreamManager } from "@nats-io/jetstream";
import type { Names } from "../nats/names.js";
import { setTimeout as sleep } from "node:timers/promises";

export interface Backlog {
  /** Not yet delivered. */
  pending: number;
  /** Delivered, not yet acked (includes orders nak'd with a delay). */
  ackPending: number;
  /** Of those, delivered more than once. */
  redelivered: number;
  /** MAX_DELIVERIES advisories the DLQ movers have not finished. */
  advisories: number;
  /** Suspects in the quarantine lane, waiting or in hand (apart from the lag: more main workers would not help them). */
  quarantined: number;
}

export async function backlog(jsm: JetStreamManager, names: Names): Promise<Backlog> {
  const [workers, mover, lane] = await Promise.all([
    jsm.consumers.info(names.stream, names.consumer),
    jsm.consumers.info(names.advisoryStream, names.moverConsumer),
    jsm.consumers.info(names.quarantineStream, names.quarantineConsumer),
  ]);
  return {
    pending: workers.num_pending,
    ackPending: workers.num_ack_pending,
    redelivered: workers.num_redelivered,
    advisories: mover.num_pending + mover.num_ack_pending,
    quarantined: lane.num_pending + lane.num_ack_pending,
  };
}

export function isQuiet(b: Backlog): boolean {
  return b.pending === 0 && b.ackPending === 0 && b.advisories === 0 && b.quarantined === 0;
}

/**
 * Resolves once the system has stayed quiet for `quietForMs` (a redelivery or advisory can still be
 * on its way right after a quiet sample). Returns false if `timeoutMs` passes first.
 */
export async function waitForQuiet(
  jsm: JetStreamManager,
  names: Names,
  opts: { quietForMs: number; timeoutMs: number; pollMs?: number; shouldStop?: () => boolean },
): Promise<boolean> {
  const deadline = Date.now() + opts.timeoutMs;
  let quietSince: number | undefined;
  while (Date.now() < deadline && !opts.shouldStop?.()) {
    let quiet: boolean;
    try {
      quiet = isQuiet(await backlog(jsm, names));
    } catch {
      quiet = false; // broker briefly unavailable: not quiet
    }
    if (!quiet) quietSince = undefined;
    else if (quietSince === undefined) quietSince = Date.now();
    else if (Date.now() - quietSince >= opts.quietForMs) return true;
    await sleep(opts.pollMs ?? 250);
  }
  return false;
}
