/** The PostgreSQL inbox against a real PostgreSQL the suite starts: schema, transactions, batches, failures. */
import assert from "node:assert/strict";
import type pg from "pg";
import { EnvironmentError } from "../../src/core/base/errors.js";
import { ensureInboxSchema } from "../../src/core/inbox/schema.js";
import { InboxStore } from "../../src/core/inbox/store.js";
import { pruneInbox } from "../../src/core/inbox/retention.js";
import type { DbClient, Outcome } from "../../src/core/pipeline/outcome-store.js";
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

  // A named (prepared) statement, as the example handler's: it must survive batches rolled back and run again.
  const insertEffect = (id: string) => async (tx: DbClient) => {
    await tx.query({ name: "insert_effect", text: "INSERT INTO effects (order_id) VALUES ($1)", values: [id] });
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

  /**
   * Runs `ids` as one batch: a first order holds the only connection of a fresh store until the rest
   * have queued up behind it, so they share the next transaction. Resolves with the first order's
   * result, then one per id, and how often each id's handler ran.
   */
  async function oneBatch(
    ids: string[],
    work: (id: string, tx: DbClient) => Promise<void>,
  ): Promise<{ results: string[]; calls: Record<string, number> }> {
    const single = await InboxStore.open({ url: db.server.url, poolSize: 1, maxBatch: 8 });
    try {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const first = single.run(`${ids[0]}-gate`, outcome(), async () => gate);
      const calls: Record<string, number> = {};
      const rest = ids.map((id) =>
        single.run(id, outcome(), async (tx) => {
          calls[id] = (calls[id] ?? 0) + 1;
          await work(id, tx);
        }),
      );
      release();
      const results = await Promise.all([first, ...rest]);
      return { results: results.map((r) => r.kind), calls };
    } finally {
      await single.close();
    }
  }

  it("commits a batch without a failure in one pass: each handler runs once", async () => {
    const ids = ["a-1", "a-2", "a-3"];
    const { results, calls } = await oneBatch(ids, (id, tx) => insertEffect(id)(tx));
    assert.deepEqual(results, ["committed", "committed", "committed", "committed"]);
    assert.deepEqual(calls, { "a-1": 1, "a-2": 1, "a-3": 1 });
    assert.deepEqual(
      (await effects(db.pool)).filter((id) => id.startsWith("a-")),
      ids,
    );
  });

  it("commits a batch together, rolling back only the order that failed: the batch runs again, each effect once", async () => {
    const { results, calls } = await oneBatch(["b-1", "b-2", "b-3", "b-4", "b-5"], async (id, tx) => {
      await insertEffect(id)(tx);
      if (id === "b-3") throw new Error("out of stock");
    });
    assert.deepEqual(results, ["committed", "committed", "committed", "failed", "committed", "committed"]);
    // The first pass stopped at b-3 and was rolled back; the second ran every order in a savepoint.
    assert.deepEqual(calls, { "b-1": 2, "b-2": 2, "b-3": 2, "b-4": 1, "b-5": 1 });
    assert.deepEqual(
      (await effects(db.pool)).filter((id) => id.startsWith("b-")),
      ["b-1", "b-2", "b-4", "b-5"],
    );
    assert.equal(await inbox.get("b-3"), undefined);
  });

  it("fails alone the last order of a batch whose handler swallowed a failed query (the COMMIT answered ROLLBACK)", async () => {
    const { results, calls } = await oneBatch(["s-1", "s-2", "s-3"], async (id, tx) => {
      await insertEffect(id)(tx);
      if (id === "s-3") await tx.query("SELECT * FROM no_such_table").catch(() => undefined);
    });
    assert.deepEqual(results, ["committed", "committed", "committed", "failed"]);
    assert.deepEqual(calls, { "s-1": 2, "s-2": 2, "s-3": 2 });
    assert.deepEqual(
      (await effects(db.pool)).filter((id) => id.startsWith("s-")),
      ["s-1", "s-2"],
    );
    assert.equal(await inbox.get("s-3"), undefined);
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
      const run = (id: string, work: (tx: DbClient) => Promise<void>) =>
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
      // The first pass ends at f-3, whose query fails in the aborted transaction; the second pass runs all three.
      assert.deepEqual(ran, ["f-1", "f-2", "f-3", "f-1", "f-2", "f-3"]);
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

  it("puts the orders a lock conflict left unrun back in line only after its transaction ended, so none is found busy", async () => {
    // A write to `commit_gate` makes its transaction's COMMIT wait for advisory lock 42, held here:
    // the batch's transaction is then over only when this test says so.
    await db.pool.query(`CREATE TABLE commit_gate (order_id text);
      CREATE FUNCTION wait_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_advisory_xact_lock(42); RETURN NULL; END $$;
      CREATE CONSTRAINT TRIGGER wait_at_commit AFTER INSERT ON commit_gate DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION wait_at_commit()`);
    const lock = await db.pool.connect();
    const store = await InboxStore.open({ url: db.server.url, poolSize: 2, maxBatch: 8 });
    try {
      await lock.query("SELECT pg_advisory_lock(42)");
      const gates = [0, 1].map(() => {
        let release!: () => void;
        const gate = new Promise<void>((resolve) => (release = resolve));
        return { gate, release };
      });
      // Two orders hold both connections, so g-1 … g-4 queue up and share the next transaction.
      const held = gates.map(({ gate }, i) => store.run(`g-gate-${i}`, outcome(), async () => gate));
      const calls: string[] = [];
      const batch = ["g-1", "g-2", "g-3", "g-4"].map((id) =>
        store.run(id, outcome(), async (tx) => {
          calls.push(id);
          if (id === "g-1") await tx.query("INSERT INTO commit_gate (order_id) VALUES ($1)", [id]);
          if (id === "g-2") throw Object.assign(new Error("deadlock detected"), { code: "40P01" });
          await insertEffect(id)(tx);
        }),
      );
      gates[0].release();
      // g-2's lock conflict ends the second pass: g-1 commits, and its COMMIT waits here.
      while (
        Number((await db.pool.query("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = 42 AND NOT granted")).rows[0].n) === 0
      ) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      // The other connection frees up while that transaction still holds g-3's and g-4's locks. A probe
      // queued behind anything that connection took at once: it settles after whatever that was.
      gates[1].release();
      await held[1];
      assert.deepEqual(await store.run("g-probe", outcome(), insertEffect("g-probe")), { kind: "committed" });
      await lock.query("SELECT pg_advisory_unlock(42)");
      const results = await Promise.all(batch);
      assert.deepEqual(
        results.map((r) => r.kind),
        ["committed", "failed", "committed", "committed"],
      );
      assert.deepEqual(calls, ["g-1", "g-2", "g-1", "g-2", "g-3", "g-4"]);
      assert.deepEqual(
        (await effects(db.pool)).filter((id) => id.startsWith("g-")),
        ["g-1", "g-3", "g-4", "g-probe"],
      );
    } finally {
      lock.release();
      await store.close();
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
