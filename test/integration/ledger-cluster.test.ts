/**
 * The ledger's exactness on a 3-node cluster (replicas 3). nats-server 2.9.10 checks a write's
 * expected last subject sequence before replication when it is non-zero, and when applying it only
 * when it is 0 (server/jetstream_cluster.go processClusteredInboundMsg, server/stream.go
 * processJetStreamMsg): two writes that expect the same non-zero sequence can both be stored. So no
 * ledger write may rest on a non-zero expectation: a released dead-letter claim must leave the key
 * never-written, not a delete marker for the next commit to expect (issue 16, item 3).
 */
import assert from "node:assert/strict";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { NatsCluster } from "../../src/core/fleet/nats-server.js";
import { Ledger, countCommits, readLedgerWrites } from "../../src/core/pipeline/ledger.js";
import type { Outcome } from "../../src/core/pipeline/outcome-store.js";
import { DEFAULT_SETTINGS, ensureTopology } from "../../src/core/nats/topology.js";

const names = DEFAULT_SETTINGS.names;
const ORDERS = 100;

function outcome(result: Outcome["result"], worker: string): Outcome {
  return { result, worker, attempt: 1, streamSeq: 1, at: new Date().toISOString() };
}

describe("ledger on a 3-node cluster (replicas 3)", function () {
  this.timeout(120_000);
  let cluster: NatsCluster;
  let viaN1: NatsConnection;
  let viaN2: NatsConnection;

  before(async () => {
    cluster = await NatsCluster.start(3);
    viaN1 = await connect({ servers: cluster.servers[0].url });
    viaN2 = await connect({ servers: cluster.servers[1].url });
    await ensureTopology(viaN1, { ...DEFAULT_SETTINGS, replicas: 3 });
  });

  after(async () => {
    await viaN1?.close();
    await viaN2?.close();
    await cluster?.dispose();
  });

  it("four racing commits after a released dead-letter claim (as dlq replay releases it): one commit per order", async () => {
    const [a1, a2, b1, b2] = await Promise.all([
      Ledger.open(viaN1, names),
      Ledger.open(viaN1, names),
      Ledger.open(viaN2, names),
      Ledger.open(viaN2, names),
    ]);
    try {
      const ids = Array.from({ length: ORDERS }, (_, i) => `released-${i}`);
      for (const id of ids) {
        assert.equal((await a1.record(id, outcome("dead-lettered", "mover"))).written, true);
        assert.equal(await a1.releaseDeadLetter(id), undefined);
      }
      const told = await Promise.all(
        ids.map(async (id) => {
          const results = await Promise.all([a1, a2, b1, b2].map((ledger, i) => ledger.record(id, outcome("committed", `w${i}`))));
          return results.filter((r) => r.written).length;
        }),
      );
      const commits = countCommits(await readLedgerWrites(viaN1, names));
      const doubled = ids.filter((id) => (commits.get(id) ?? 0) !== 1);
      assert.deepEqual(doubled, [], `orders without exactly one commit in the ledger: ${doubled.length} of ${ORDERS}`);
      assert.deepEqual(
        told.filter((n) => n !== 1),
        [],
        "exactly one of the four callers is told its write was written",
      );
    } finally {
      await Promise.all([a1, a2, b1, b2].map((l) => l.close()));
    }
  });

  it("four racing commits over a delete marker (a release by an older orderq, or nats kv del): one commit per order", async () => {
    const ledgers = await Promise.all([viaN1, viaN1, viaN2, viaN2].map((nc) => Ledger.open(nc, names)));
    try {
      const ids = Array.from({ length: ORDERS / 4 }, (_, i) => `marked-${i}`);
      const kv = await new Kvm(viaN2).open(names.ledgerBucket);
      for (const id of ids) {
        assert.equal((await ledgers[0].record(id, outcome("dead-lettered", "mover"))).written, true);
        await kv.delete(id);
      }
      const told = await Promise.all(
        ids.map(
          async (id) => (await Promise.all(ledgers.map((l, i) => l.record(id, outcome("committed", `w${i}`))))).filter((r) => r.written).length,
        ),
      );
      const commits = countCommits(await readLedgerWrites(viaN1, names));
      const doubled = ids.filter((id) => (commits.get(id) ?? 0) !== 1);
      assert.deepEqual(doubled, [], `orders without exactly one commit in the ledger: ${doubled.length} of ${ids.length}`);
      assert.deepEqual(
        told.filter((n) => n !== 1),
        [],
        "exactly one of the four callers is told its write was written",
      );
    } finally {
      await Promise.all(ledgers.map((l) => l.close()));
    }
  });

  it("a commit racing a dead-letter claim: one outcome per order", async () => {
    const [a, b] = await Promise.all([Ledger.open(viaN1, names), Ledger.open(viaN2, names)]);
    try {
      const ids = Array.from({ length: ORDERS }, (_, i) => `raced-${i}`);
      const told = await Promise.all(
        ids.map(async (id) => {
          const [commit, claim] = await Promise.all([a.record(id, outcome("committed", "w")), b.record(id, outcome("dead-lettered", "mover"))]);
          return Number(commit.written) + Number(claim.written);
        }),
      );
      const writes = (await readLedgerWrites(viaN1, names)).filter((w) => w.orderId.startsWith("raced-"));
      const perOrder = new Map<string, number>();
      for (const w of writes) perOrder.set(w.orderId, (perOrder.get(w.orderId) ?? 0) + 1);
      assert.deepEqual(
        ids.filter((id) => perOrder.get(id) !== 1),
        [],
        "one write per order in the ledger",
      );
      assert.deepEqual(
        told.filter((n) => n !== 1),
        [],
        "exactly one writer told written",
      );
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
