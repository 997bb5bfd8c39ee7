/**
 * The ledger on a 3-node cluster (replicas 3): racing commits of one order, through two servers, leave
 * one commit — also after a dead-letter claim was released for a replay, the case where nats-server
 * 2.9.10 let every racer win when the key was re-created over a delete marker (an expected last
 * subject sequence other than 0, checked before replication). And a commit racing a dead-letter claim
 * leaves one of them.
 */
import assert from "node:assert/strict";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { NatsCluster } from "../../src/core/fleet/nats-server.js";
import { DEFAULT_NAMES as names } from "../../src/core/nats/names.js";
import { DEFAULT_SETTINGS, ensureTopology } from "../../src/core/nats/topology.js";
import { countCommits, Ledger, readLedgerWrites } from "../../src/core/pipeline/ledger.js";
import type { Outcome } from "../../src/core/pipeline/outcome-store.js";

const ORDERS = 40;

function outcome(result: Outcome["result"], worker: string): Outcome {
  return {
    result,
    worker,
    attempt: 1,
    streamSeq: 1,
    at: new Date().toISOString(),
    ...(result === "dead-lettered" ? { reason: "max-deliveries" } : {}),
  };
}

describe("ledger on a 3-node cluster", function () {
  this.timeout(120_000);
  let cluster: NatsCluster;
  const conns: NatsConnection[] = [];
  let ledgers: Ledger[];

  before(async function () {
    cluster = await NatsCluster.start(3);
    // Two clients, each on its own server: the racers reach the stream leader through different nodes.
    for (const s of cluster.servers.slice(0, 2)) conns.push(await connect({ servers: s.url }));
    await ensureTopology(conns[0], { ...DEFAULT_SETTINGS, replicas: 3 });
    ledgers = await Promise.all([...conns, ...conns].map((nc) => Ledger.open(nc, names)));
  });

  after(async function () {
    await Promise.all((ledgers ?? []).map((l) => l.close()));
    await Promise.all(conns.map((nc) => nc.close()));
    await cluster?.dispose();
  });

  /** Four racing commits of `id` (two through each server): how many were told "written". */
  async function race(id: string): Promise<number> {
    const results = await Promise.all(ledgers.map((l, i) => l.record(id, outcome("committed", `w${i}`))));
    return results.filter((r) => r.written).length;
  }

  it("after a released dead-letter claim, 4 racing commits leave one commit per order", async () => {
    const ids = Array.from({ length: ORDERS }, (_, i) => `rel-${i}`);
    const kv = await new Kvm(conns[1]).open(names.ledgerBucket);
    for (const [i, id] of ids.entries()) {
      assert.equal((await ledgers[0].record(id, outcome("dead-lettered", "mover"))).written, true);
      // Half released as dlq replay releases them; half with the delete marker an older orderq left.
      if (i % 2) await kv.delete(id);
      else assert.equal(await ledgers[1].releaseDeadLetter(id), undefined);
    }
    const told = await Promise.all(ids.map(race));
    const commits = countCommits(await readLedgerWrites(conns[0], names));
    const twice = ids.filter((id) => commits.get(id) !== 1);
    assert.deepEqual(twice, [], `orders without exactly one commit (${twice.length} of ${ORDERS})`);
    assert.deepEqual(
      told.filter((n) => n !== 1),
      [],
      "exactly one racer is told its commit was written",
    );
  });

  it("never-written keys: 4 racing commits leave one commit per order", async () => {
    const ids = Array.from({ length: ORDERS }, (_, i) => `new-${i}`);
    assert.deepEqual(
      (await Promise.all(ids.map(race))).filter((n) => n !== 1),
      [],
    );
    const commits = countCommits(await readLedgerWrites(conns[0], names));
    assert.deepEqual(
      ids.filter((id) => commits.get(id) !== 1),
      [],
    );
  });

  it("a commit racing a dead-letter claim, before and after a release: one outcome", async () => {
    const ids = Array.from({ length: ORDERS }, (_, i) => `claim-${i}`);
    const duel = (id: string) =>
      Promise.all([ledgers[0].record(id, outcome("committed", "worker")), ledgers[1].record(id, outcome("dead-lettered", "mover"))]);
    for (const [commit, claim] of await Promise.all(ids.map(duel))) assert.equal(Number(commit.written) + Number(claim.written), 1);
    // Release what was claimed (a replay), then race again.
    const claimed = [];
    for (const id of ids) if ((await ledgers[2].get(id))?.result === "dead-lettered") claimed.push(id);
    for (const id of claimed) assert.equal(await ledgers[3].releaseDeadLetter(id), undefined);
    for (const [commit, claim] of await Promise.all(claimed.map(duel))) assert.equal(Number(commit.written) + Number(claim.written), 1);
    const writes = await readLedgerWrites(conns[0], names);
    const commits = countCommits(writes);
    assert.deepEqual(
      ids.filter((id) => (commits.get(id) ?? 0) > 1),
      [],
      "committed twice",
    );
    for (const id of ids) {
      const o = await ledgers[0].get(id);
      assert.ok(o, `${id} has an outcome`);
    }
  });
});
