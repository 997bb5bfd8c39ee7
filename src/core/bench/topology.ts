/** Fresh JetStream resources per phase, so no phase measures a stream another phase has used. */
import type { NatsConnection } from "@nats-io/transport-node";
import type { JetStreamManager } from "@nats-io/jetstream";
import { namesFor, type Names } from "../names.js";
import { DEFAULT_SETTINGS, ensureTopology } from "../topology.js";

/** Names unique to one phase of one run; `tag` keeps two benchmarks on one server apart. */
export function phaseNames(tag: string, phase: string): Names {
  const stream = `BENCH_${tag}_${phase}`;
  return namesFor({
    stream,
    consumer: "workers",
    dlqStream: `${stream}_DLQ`,
    ledgerBucket: `${stream.toLowerCase()}_ledger`,
  });
}

/** The whole orderq topology with the default settings (the baseline uses its stream and consumer too). */
export async function createTopology(nc: NatsConnection, names: Names): Promise<void> {
  await ensureTopology(nc, { ...DEFAULT_SETTINGS, names });
}

export async function streamMessages(jsm: JetStreamManager, stream: string): Promise<number> {
  return (await jsm.streams.info(stream)).state.messages;
}
