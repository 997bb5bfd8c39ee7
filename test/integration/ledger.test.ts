/**
 * The ledger's commit (create-if-absent) and the hot-path publisher it is sent on, against a real
 * nats-server: every answer a PubAck request can get — stored, refused, nobody listening, no answer.
 */
import assert from "node:assert/strict";
import { headers } from "@nats-io/transport-node";
import { JetStreamApiError, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Ledger, readLedgerWrites } from "../../src/core/pipeline/ledger.js";
import type { Outcome } from "../../src/core/pipeline/outcome-store.js";
import { DEFAULT_NAMES } from "../../src/core/nats/names.js";
import { isWrongLastSequence, lastKeyWrite } from "../../src/core/nats/kv-keys.js";
import { PubAckRequests } from "../../src/core/nats/pub-acks.js";
import { DEFAULT_SETTINGS, ensureTopology } from "../../src/core/nats/topology.js";
import { useServer } from "../support/server.js";

const names = DEFAULT_NAMES;

function outcome(result: Outcome["result"], worker: string): Outcome {
  return { result, worker, attempt: 1, streamSeq: 1, at: new Date().toISOString() };
}

describe("ledger commit", function () {
  const fx = useServer();
  before(() => ensureTopology(fx.nc, DEFAULT_SETTINGS));

  it("writes an order's outcome once; a second record gets the first outcome back", async () => {
    const ledger = await Ledger.open(fx.nc, names);
    assert.equal((await ledger.record("once-1", outcome("committed", "w1"))).written, true);
    const second = await ledger.record("once-1", outcome("committed", "w2"));
    assert.equal(second.written, false);
    assert.equal(second.written === false && second.existing?.worker, "w1");
    const writes = (await readLedgerWrites(fx.nc, names)).filter((w) => w.orderId === "once-1");
    assert.equal(writes.length, 1, "the refused write left no trace in the ledger's stream");
    await ledger.close();
  });

  it("commits a key whose dead-letter claim was released for replay: the release leaves nothing on the key", async () => {
    const ledger = await Ledger.open(fx.nc, names);
    assert.equal((await ledger.record("replayed-1", outcome("dead-lettered", "w1"))).written, true);
    assert.equal(await ledger.releaseDeadLetter("replayed-1"), undefined);
    assert.equal(await ledger.get("replayed-1"), undefined);
    const jsm = await jetstreamManager(fx.nc);
    assert.equal(
      await lastKeyWrite(jsm, names.ledgerBucket, "replayed-1"),
      undefined,
      "no claim and no delete marker: the next commit is a create that expects sequence 0",
    );
    assert.equal((await ledger.record("replayed-1", outcome("committed", "w2"))).written, true);
    assert.equal((await ledger.get("replayed-1"))?.result, "committed");
    assert.equal((await ledger.record("replayed-1", outcome("committed", "w3"))).written, false, "and only once");
    await ledger.close();
  });

  it("commits a key whose last entry is a delete marker (a release by an older orderq, or nats kv del)", async () => {
    const ledger = await Ledger.open(fx.nc, names);
    assert.equal((await ledger.record("marked-1", outcome("dead-lettered", "w1"))).written, true);
    await (await new Kvm(fx.nc).open(names.ledgerBucket)).delete("marked-1");
    const marker = await lastKeyWrite(await jetstreamManager(fx.nc), names.ledgerBucket, "marked-1");
    assert.ok(marker && marker.seq > 0 && marker.value === undefined, "the key's last write is a marker: a sequence, no value");
    assert.equal((await ledger.record("marked-1", outcome("committed", "w2"))).written, true);
    assert.equal((await ledger.record("marked-1", outcome("committed", "w3"))).written, false, "and only once");
    await ledger.close();
  });

  it("refuses to release a committed order", async () => {
    const ledger = await Ledger.open(fx.nc, names);
    await ledger.record("kept-1", outcome("committed", "w1"));
    assert.equal((await ledger.releaseDeadLetter("kept-1"))?.worker, "w1");
    assert.equal((await ledger.get("kept-1"))?.result, "committed");
    await ledger.close();
  });
});

describe("PubAck requests on one subscription", function () {
  const fx = useServer();
  before(() => ensureTopology(fx.nc, DEFAULT_SETTINGS));

  it("resolves each publish with its own stream sequence, in any number at once", async () => {
    const publisher = new PubAckRequests(fx.nc);
    try {
      const acks = await Promise.all(Array.from({ length: 300 }, (_, i) => publisher.publish(`$KV.${names.ledgerBucket}.many-${i}`, `${i}`)));
      const seqs = acks.map((a) => a.seq);
      assert.equal(new Set(seqs).size, 300, "300 distinct sequences");
      assert.ok(
        seqs.every((s, i) => i === 0 || s > seqs[i - 1]),
        "answers matched to their requests (sequences in publish order)",
      );
    } finally {
      publisher.close();
    }
  });

  it("rejects with the JetStream API error when the write's expectation fails", async () => {
    const publisher = new PubAckRequests(fx.nc);
    const createOnly = headers();
    createOnly.set("Nats-Expected-Last-Subject-Sequence", "0");
    try {
      await publisher.publish(`$KV.${names.ledgerBucket}.twice`, "1", createOnly);
      await assert.rejects(
        publisher.publish(`$KV.${names.ledgerBucket}.twice`, "2", createOnly),
        (err: unknown) => err instanceof JetStreamApiError && err.code === 10071 && isWrongLastSequence(err),
      );
    } finally {
      publisher.close();
    }
  });

  it("tells a wrong last sequence from other JetStream API errors", async () => {
    const jsm = await jetstreamManager(fx.nc);
    await assert.rejects(jsm.streams.info("NO_SUCH_STREAM"), (err: unknown) => err instanceof JetStreamApiError && !isWrongLastSequence(err));
    assert.equal(isWrongLastSequence(new Error("wrong last sequence: 5")), false, "never by message text");
  });

  it("rejects when no stream listens on the subject", async () => {
    const publisher = new PubAckRequests(fx.nc);
    try {
      await assert.rejects(publisher.publish("nobody.listens.here", "x"), /no responders/);
    } finally {
      publisher.close();
    }
  });

  it("rejects a publish the server never answers, after the timeout, and still works afterwards", async () => {
    const publisher = new PubAckRequests(fx.nc, 300);
    await fx.server.pause();
    try {
      await assert.rejects(publisher.publish(`$KV.${names.ledgerBucket}.paused`, "x"), /timeout: no PubAck within 300 ms/);
    } finally {
      fx.server.resume();
    }
    try {
      // The publish sent while the server was stopped may still land; a new key is answered normally.
      assert.ok((await publisher.publish(`$KV.${names.ledgerBucket}.after-pause`, "y")).seq > 0);
    } finally {
      publisher.close();
    }
  });

  it("fails what is still waiting when closed, and refuses what comes after", async () => {
    const publisher = new PubAckRequests(fx.nc);
    await fx.server.pause();
    try {
      const waiting = publisher.publish(`$KV.${names.ledgerBucket}.closed`, "x");
      publisher.close();
      await assert.rejects(waiting, /publisher closed/);
      await assert.rejects(publisher.publish(`$KV.${names.ledgerBucket}.later`, "y"), /publisher closed/);
    } finally {
      fx.server.resume();
    }
  });
});
