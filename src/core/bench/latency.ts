/**
 * End-to-end latency at a fixed rate: the real Producer publishes at --rate while real workers run;
 * latency = the ledger write's server timestamp − the moment the producer called publish.
 *
 * Freshly started workers are cold (JIT): they first drain a warm-up batch flat out, and the fixed-rate
 * publishing starts once it is committed. Warm-up orders are verified too, but not in the histogram.
 */
import { readLedgerWrites } from "../pipeline/ledger.js";
import { commitTimes, verifyCommits, waitForLedger } from "./commits.js";
import { summarizeLatency } from "./histogram.js";
import { wallNow } from "./meter.js";
import { BenchSink, newProducer, type ProduceSettings } from "./produce.js";
import { settledStreamMessages } from "./topology.js";
import { perSecond, type PhaseResult } from "./types.js";
import { runWorkersUntil, type WorkerPhaseContext } from "./work.js";

export async function latencyPhase(ctx: WorkerPhaseContext, settings: ProduceSettings, warmupOrders: number): Promise<PhaseResult> {
  const warmup = new BenchSink(false);
  const sink = new BenchSink(true);
  let [t0, sentAt] = [0, 0];
  const { meter, rss, restarts } = await runWorkersUntil(
    ctx,
    () => warmup.accepted.length + sink.accepted.length,
    "latency",
    async (m) => {
      ctx.progress(`latency: warming the workers up with ${warmupOrders} orders`);
      await newProducer(ctx.hotNc, ctx.names, { ...settings, count: warmupOrders, rate: 0, idPrefix: `${settings.idPrefix}w` }, warmup).run();
      await waitForLedger(ctx.jsm, ctx.names, warmup.accepted.length, ctx.stallMs, () => {});
      ctx.progress(`latency: publishing ${settings.count} orders at ${settings.rate}/s`);
      t0 = m.mark();
      await newProducer(ctx.hotNc, ctx.names, settings, sink).run();
      sentAt = wallNow();
    },
  );
  const left = await settledStreamMessages(ctx.jsm, ctx.names.stream);
  const writes = await readLedgerWrites(ctx.nc, ctx.names);
  const latencies: number[] = [];
  let lastCommit = t0;
  for (const [id, committedAt] of commitTimes(writes)) {
    const publishedAt = sink.publishedAt.get(id);
    if (publishedAt === undefined) continue; // a warm-up order
    lastCommit = Math.max(lastCommit, committedAt);
    latencies.push(committedAt - publishedAt);
  }
  return {
    phase: "latency",
    count: sink.accepted.length,
    elapsedMs: Math.round(sentAt - t0),
    rate: perSecond(sink.accepted.length, sentAt - t0),
    window: `after ${warmupOrders} warm-up orders, publishing at the fixed rate; latency = ledger write (server time) − publish call`,
    cpu: meter.cpu(t0, lastCommit),
    verification: verifyCommits(writes, [...warmup.accepted, ...sink.accepted], left),
    workerPeakRssMb: rss,
    workerRestarts: restarts,
    latency: summarizeLatency(latencies),
  };
}
