/** The nemesis's db-restart fault against a fake database: kill, the outage, restart; one outage at a time. */
import assert from "node:assert/strict";
import { Nemesis, type NemesisTargets } from "../../src/core/chaos/nemesis.js";
import type { FaultSpec } from "../../src/core/chaos/scenario.js";

class FakeDatabase {
  running = true;
  readonly port = 5999;
  readonly events: string[] = [];
  async kill(): Promise<void> {
    this.events.push(`kill running=${this.running}`);
    this.running = false;
  }
  async restart(): Promise<void> {
    this.events.push(`restart running=${this.running}`);
    await new Promise((r) => setTimeout(r, 30)); // crash recovery takes a while
    this.running = true;
  }
}

const spec = (over: Partial<FaultSpec>): FaultSpec => ({ kind: "db-restart", of: [], jitterMs: 0, durationMs: 50, delayMs: 0, ...over });

function nemesis(specs: FaultSpec[], database?: FakeDatabase): Nemesis {
  const targets = { workers: { ids: () => [] }, servers: [], leader: async () => undefined, paths: {}, database } as unknown as NemesisTargets;
  return new Nemesis(specs, targets, 1);
}

describe("nemesis: db-restart", () => {
  it("kills the database, waits the fault's duration, restarts it on the same port, and records the window", async () => {
    const db = new FakeDatabase();
    const n = nemesis([spec({ atMs: 0, durationMs: 60 })], db);
    n.start(Date.now());
    await n.wait();
    assert.deepEqual(db.events, ["kill running=true", "restart running=false"]);
    assert.equal(n.windows.length, 1);
    const [w] = n.windows;
    assert.equal(w.kind, "db-restart");
    assert.equal(w.target, "postgres:5999");
    assert.equal(w.observed, true);
    assert.ok(w.endMs - w.startMs >= 60, `window ${w.startMs}–${w.endMs}`);
  });

  it("never kills the database while a previous outage or restart is under way", async () => {
    const db = new FakeDatabase();
    // Two schedules due at the same moment: the second waits until the first one's restart is done.
    const n = nemesis([spec({ atMs: 0 }), spec({ atMs: 0 })], db);
    n.start(Date.now());
    await n.wait();
    assert.deepEqual(db.events, ["kill running=true", "restart running=false", "kill running=true", "restart running=false"]);
    assert.equal(n.windows.filter((w) => w.observed).length, 2);
  });

  it("is a window not observed when the run has no database", async () => {
    const n = nemesis([spec({ atMs: 0 })]);
    n.start(Date.now());
    await n.wait();
    assert.deepEqual(
      n.windows.map((w) => [w.kind, w.observed, w.detail]),
      [["db-restart", false, "no inbox database in this run"]],
    );
  });
});
