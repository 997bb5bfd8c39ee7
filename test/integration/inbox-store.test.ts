/** The PostgreSQL inbox against a real PostgreSQL the suite starts: schema, transactions, batches, failures. */
import assert from "node:assert/strict";
import type pg from "pg";
import { EnvironmentError } from "../../src/core/base/errors.js";
import { ensureInboxSchema } from "../../src/core/inbox/schema.js";
import { InboxStore } from "../../src/core/inbox/store.js";
import { pruneInbox } from "../../src/core/inbox/retention.js";
import type { Outcome } from "../../src/core/pipeline/outcome-store.js";
import { usePostgres } from "../support/postgres.js";

function outcome(attempt = 1, result: Outcome["result"] = "committed"): Outcome {
  return { result, worker: "w-test", attempt, streamSeq: attempt, at: new Date().toISOString() };
}

async function effects(pool: pg.Pool): Promise<string[]> {
  const { rows } = await pool.query<{ order_id: string }>("SELECT order_id FROM effects ORDER BY order_id");
  return rows.map((r) => r.order_id);
}

describe("PostgreSQL inbox store", function () {
  const db = usePostgres();
  let inbox: InboxStore;

  before(async function () {
    await ensureInboxSchema(db.pool);
    await ensureInboxSchema(db.pool); // idempotent
    await db.pool.query("CREATE TABLE effects (order_id text NOT NULL)");
    inbox = await InboxStore.open({ url: db.server.url, poolSize: 2, maxBatch: 8 });
  });
  after(async () => inbox?.close());

  const insertEffect = (id: string) => async (tx: { query: (t: string, v?: unknown[]) => Promise<unknown> }) => {
    await tx.query("INSERT INTO effects (order_id) VALUES ($1)", [id]);
  };

  it("deletes rows older than the horizon in batches, and only those", async () => {
    await ensureInboxSchema(db.pool, "pruned_inbox");
    const old = new Date(Date.now() - 3_600_000).toISOString();
    const rows = [...Array.from({ length: 5 }, (_, i) => [`old-${i}`, old]), ["fresh", new Date().toISOString()]];
    for (const [id, at] of rows) {
      await db.pool.query("INSERT INTO pruned_inbox (order_id, outcome, worker, attempt, stream_seq, at) VALUES ($1, 'committed', 'w', 1, 1, $2)", [
        id,
        at,
      ]);
    }
    assert.equal(await pruneInbox(db.pool, "pruned_inbox", 0), 0, "no horizon: nothing deleted");
    assert.equal(await pruneInbox(db.pool, "pruned_inbox", 60_000, 2), 5); // three statements of at most 2 rows
    const left = await db.pool.query<{ order_id: string }>("SELECT order_id FROM pruned_inbox");
    assert.deepEqual(
      left.rows.map((r) => r.order_id),
      ["fresh"],
    );
  });

  it("commits the handler's effects with the inbox row, and a second delivery finds the row without running the handler", async () => {
    assert.deepEqual(await inbox.run("o-1", outcome(), insertEffect("o-1")), { kind: "committed" });
    let ran = false;
    const again = await inbox.run("o-1", outcome(2), async () => {
      ran = true;
    });
    assert.equal(again.kind, "exists");
    assert.equal(ran, false);
    assert.equal((again.kind === "exists" ? again.existing : undefined)?.attempt, 1);
    assert.deepEqual(await effects(db.pool), ["o-1"]);
    assert.equal((await inbox.get("o-1"))?.result, "committed");
  });

  it("rolls back a failed handler's effects and row, so the next delivery runs it again", async () => {
    const failed = await inbox.run("o-2", outcome(), async (tx) => {
      await insertEffect("o-2")(tx);
      throw new Error("payment declined");
    });
    assert.equal(failed.kind, "failed");
    assert.equal(await inbox.get("o-2"), undefined);
    assert.deepEqual(await inbox.run("o-2", outcome(2), insertEffect("o-2")), { kind: "committed" });
    assert.deepEqual(
      (await effects(db.pool)).filter((id) => id === "o-2"),
      ["o-2"],
    );
  });

  it("fails an attempt whose handler swallowed a database error and returned", async () => {
    const result = await inbox.run("o-3", outcome(), async (tx) => {
      await insertEffect("o-3")(tx);
      await tx.query("SELECT * FROM no_such_table").catch(() => undefined);
    });
    assert.equal(result.kind, "failed");
    assert.equal(await inbox.get("o-3"), undefined);
    assert.ok(!(await effects(db.pool)).includes("o-3"));
  });

  it("commits a batch together, rolling back only the order that failed", async () => {
    const single = await InboxStore.open({ url: db.server.url, poolSize: 1, maxBatch: 8 });
    try {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      // The first order holds the only connection, so the next five queue up and share one transaction.
      const first = single.run("b-0", outcome(), async (tx) => {
        await gate;
        await insertEffect("b-0")(tx);
      });
      const rest = ["b-1", "b-2", "b-3", "b-4", "b-5"].map((id) =>
        single.run(id, outcome(), async (tx) => {
          await insertEffect(id)(tx);
          if (id === "b-3") throw new Error("out of stock");
        }),
      );
      release();
      const results = await Promise.all([first, ...rest]);
      assert.deepEqual(
        results.map((r) => r.kind),
        ["committed", "committed", "committed", "failed", "committed", "committed"],
      );
      assert.deepEqual(
        (await effects(db.pool)).filter((id) => id.startsWith("b-")),
        ["b-0", "b-1", "b-2", "b-4", "b-5"],
      );
      assert.equal(await single.get("b-3"), undefined);
    } finally {
      await single.close();
    }
  });

  it("in one batch: finds a committed order, tells a second delivery of one order it is busy, rolls back a swallowed error alone", async () => {
    assert.deepEqual(await inbox.run("f-0", outcome(), insertEffect("f-0")), { kind: "committed" });
    const single = await InboxStore.open({ url: db.server.url, poolSize: 1, maxBatch: 8 });
    try {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const first = single.run("f-gate", outcome(), async (tx) => {
        await gate;
        await insertEffect("f-gate")(tx);
      });
      const ran: string[] = [];
      const run = (id: string, work: (tx: Parameters<ReturnType<typeof insertEffect>>[0]) => Promise<void>) =>
        single.run(id, outcome(2), async (tx) => {
          ran.push(id);
          await work(tx);
        });
      const batch = [
        run("f-0", insertEffect("f-0")), // committed before
        run("f-1", insertEffect("f-1")),
        run("f-1", insertEffect("f-1")), // a second delivery of f-1 in the same batch
        run("f-2", async (tx) => {
          await insertEffect("f-2")(tx);
          await tx.query("SELECT * FROM no_such_table").catch(() => undefined);
        }),
        run("f-3", insertEffect("f-3")),
      ];
      release();
      const results = await Promise.all([first, ...batch]);
      assert.deepEqual(
        results.map((r) => r.kind),
        ["committed", "exists", "committed", "busy", "failed", "committed"],
      );
      assert.deepEqual(ran, ["f-1", "f-2", "f-3"]);
      assert.deepEqual(
        (await effects(db.pool)).filter((id) => id.startsWith("f-")),
        ["f-0", "f-1", "f-3", "f-gate"],
      );
      assert.equal(await single.get("f-2"), undefined, "the failed order's row is gone with its effects");
      assert.equal((await single.get("f-1"))?.attempt, 2);
    } finally {
      await single.close();
    }
  });

  it("tells a second delivery of an order that is in a transaction right now that it is busy", async () => {
    const solo = await InboxStore.open({ url: db.server.url, poolSize: 2, maxBatch: 1 });
    try {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let entered!: () => void;
      const inside = new Promise<void>((resolve) => (entered = resolve));
      const first = solo.run("c-1", outcome(), async (tx) => {
        entered();
        await gate;
        await insertEffect("c-1")(tx);
      });
      await inside;
      let ran = false;
      const second = await solo.run("c-1", outcome(2), async () => {
        ran = true;
      });
      release();
      assert.deepEqual(second, { kind: "busy" });
      assert.equal(ran, false);
      assert.deepEqual(await first, { kind: "committed" });
      assert.deepEqual(
        (await effects(db.pool)).filter((id) => id === "c-1"),
        ["c-1"],
      );
    } finally {
      await solo.close();
    }
  });

  it("keeps one outcome per order between dead-letter claims and commits, and releases a claim for replay", async () => {
    assert.deepEqual(await inbox.record("d-1", outcome(5, "dead-lettered")), { written: true });
    const claimAgain = await inbox.record("d-1", outcome(6, "dead-lettered"));
    assert.equal(claimAgain.written, false);
    const run = await inbox.run("d-1", outcome(6), insertEffect("d-1"));
    assert.equal(run.kind, "exists");
    assert.equal((run.kind === "exists" ? run.existing : undefined)?.result, "dead-lettered");
    assert.equal(await inbox.releaseDeadLetter("d-1"), undefined);
    assert.deepEqual(await inbox.run("d-1", outcome(1), insertEffect("d-1")), { kind: "committed" });
    assert.equal((await inbox.releaseDeadLetter("d-1"))?.result, "committed", "a committed order is not released");
    assert.ok((await effects(db.pool)).includes("d-1"));
  });

  it("rejects, and commits nothing, when the database dies in the middle of a transaction; works again after a restart", async function () {
    this.timeout(60_000);
    const fragile = await InboxStore.open({ url: db.server.url, poolSize: 1, maxBatch: 1 });
    try {
      const killed = fragile.run("e-1", outcome(), async (tx) => {
        await insertEffect("e-1")(tx);
        await db.server.kill();
      });
      await assert.rejects(killed);
      await db.server.restart();
      assert.equal(await fragile.get("e-1"), undefined);
      assert.deepEqual(await fragile.run("e-1", outcome(2), insertEffect("e-1")), { kind: "committed" });
      assert.deepEqual(
        (await effects(db.pool)).filter((id) => id === "e-1"),
        ["e-1"],
      );
    } finally {
      await fragile.close();
    }
  });

  it("refuses a table of another shape, and a missing one, with one line naming it", async () => {
    await db.pool.query("CREATE TABLE not_inbox (order_id text PRIMARY KEY, outcome integer)");
    await assert.rejects(
      InboxStore.open({ url: db.server.url, table: "not_inbox", poolSize: 1, maxBatch: 1 }),
      (err: unknown) => err instanceof EnvironmentError && /not_inbox: column outcome is integer, expected text/.test(err.message),
    );
    await assert.rejects(
      InboxStore.open({ url: db.server.url, table: "nowhere", poolSize: 1, maxBatch: 1 }),
      (err: unknown) => err instanceof EnvironmentError && /inbox table nowhere does not exist/.test(err.message),
    );
  });
});
