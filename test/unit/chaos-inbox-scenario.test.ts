/** Scenario files of inbox mode: handler.module and inbox.schema relative to the file, db-restart only with an inbox. */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InputError } from "../../src/core/base/errors.js";
import { loadScenarioFile, scenarioFiles } from "../../src/core/chaos/loader.js";
import { faultNames } from "../../src/core/chaos/scenario.js";

const BASE = `orders: 100
rate: 50
`;

const INBOX = `${BASE}handler:
  module: ../handlers/handler.mjs
inbox:
  schema: ../handlers/schema.sql
  effects: true
  batch: 4
faults:
  - kind: db-restart
    at: 1s
    duration: 500ms
`;

describe("chaos scenario files: inbox mode", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "orderq-inbox-scenarios-"));
    mkdirSync(join(dir, "scenarios"));
    mkdirSync(join(dir, "handlers"));
    writeFileSync(join(dir, "handlers", "handler.mjs"), "export default async () => {};\n");
    writeFileSync(join(dir, "handlers", "schema.sql"), "CREATE TABLE IF NOT EXISTS t (id text);\n");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function write(name: string, text: string): string {
    const file = join(dir, "scenarios", name);
    writeFileSync(file, text);
    return file;
  }

  /** The InputError's message; fails when loading succeeds or throws something else. */
  function refusal(name: string, text: string): string {
    const file = write(name, text);
    try {
      loadScenarioFile(file);
    } catch (err) {
      assert.ok(err instanceof InputError, String(err));
      assert.equal(err.message.split("\n").length, 1, err.message);
      assert.ok(err.message.includes(file) || err.message.includes(join("scenarios", name)), err.message);
      return err.message;
    }
    assert.fail(`${name} was accepted`);
  }

  it("resolves handler.module and inbox.schema against the scenario file, with the inbox's defaults", () => {
    const s = loadScenarioFile(write("ok.yaml", INBOX));
    assert.equal(s.handler.module, join(dir, "handlers", "handler.mjs"));
    assert.deepEqual(s.inbox, { schema: join(dir, "handlers", "schema.sql"), effects: true, maxBatch: 4, poolSize: 8 });
    assert.deepEqual(faultNames(s), ["db-restart"]);
    const plain = loadScenarioFile(write("plain.yaml", BASE));
    assert.equal(plain.inbox, undefined);
    assert.equal(plain.handler.module, undefined);
  });

  it("refuses a handler module or a schema that does not exist, naming the file, line and field", () => {
    assert.match(
      refusal("no-module.yaml", INBOX.replace("../handlers/handler.mjs", "../handlers/missing.mjs")),
      /:4: handler\.module: no handler module at \.\.\/handlers\/missing\.mjs/,
    );
    assert.match(refusal("no-schema.yaml", INBOX.replace("../handlers/schema.sql", "nope.sql")), /:6: inbox\.schema: no SQL file at nope\.sql/);
  });

  it("refuses db-restart without an inbox, also among the kinds of `any`", () => {
    assert.match(
      refusal("db-no-inbox.yaml", `${BASE}faults:\n  - kind: db-restart\n    at: 1s\n`),
      /:4: faults\[0\]\.kind: db-restart restarts the inbox's PostgreSQL/,
    );
    assert.match(
      refusal("any-db.yaml", `${BASE}faults:\n  - kind: kill-worker\n    at: 1s\n  - kind: any\n    of: [kill-worker, db-restart]\n    every: 1s\n`),
      /faults\[1\]\.kind: db-restart/,
    );
  });

  it("refuses effects without a module or a schema, and the simulated handler's knobs beside a module", () => {
    assert.match(
      refusal("effects-no-module.yaml", `${BASE}inbox:\n  schema: ../handlers/schema.sql\n  effects: true\n`),
      /inbox\.effects: .*handler\.module/,
    );
    assert.match(
      refusal("effects-no-schema.yaml", `${BASE}handler:\n  module: ../handlers/handler.mjs\ninbox:\n  effects: true\n`),
      /inbox\.effects: .*inbox\.schema/,
    );
    assert.match(
      refusal("knob.yaml", `${BASE}handler:\n  module: ../handlers/handler.mjs\n  poison-rate: 0.1\n`),
      /:5: handler\.poison-rate: a knob of the simulated handler/,
    );
    assert.match(refusal("unknown.yaml", `${BASE}inbox:\n  tables: 3\n`), /:4: inbox\.tables: unknown field/);
    assert.match(refusal("batch.yaml", `${BASE}inbox:\n  batch: 0\n`), /:4: inbox\.batch: must be at least 1/);
    assert.match(refusal("batch-65.yaml", `${BASE}inbox:\n  batch: 65\n`), /:4: inbox\.batch: must be at most 64/);
  });

  it("the repository's inbox scenarios load, check effects and stay small", () => {
    const files = scenarioFiles(new URL("../../scenarios", import.meta.url).pathname).filter((f) => /\/inbox-/.test(f));
    assert.deepEqual(
      files.map((f) => f.split("/").pop()),
      ["inbox-ack-lost.yaml", "inbox-worker-crash.yaml"],
    );
    for (const file of files) {
      const s = loadScenarioFile(file);
      assert.equal(s.inbox?.effects, true, file);
      assert.match(s.handler.module ?? "", /examples\/postgres-orders\/handler\.mjs$/);
      assert.ok(s.orders <= 1500 && s.timeLimitMs <= 60_000, file);
    }
  });
});
