import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../support/cli.js";

const VALID = `orders: 100
rate: 50
workers:
  processes: 2
handler:
  ms: 1
  poison-rate: 0.02
faults:
  - kind: kill-worker
    at: 1s
`;

describe("chaos scenario files", () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), "orderq-scenarios-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Writes `text` to a file and runs `chaos validate` on it. */
  async function validate(name: string, text: string) {
    const file = join(dir, name);
    writeFileSync(file, text);
    return { file, result: await runCli(["chaos", "validate", file]) };
  }

  /** A bad file: exit 2 and exactly one line naming the file, the line and the field. */
  async function expectOneLineError(name: string, text: string, line: number, field: string): Promise<string> {
    const { file, result } = await validate(name, text);
    assert.equal(result.code, 2, result.stderr);
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 1, result.stderr);
    assert.ok(lines[0].includes(`${file}:${line}: ${field}`), lines[0]);
    return lines[0];
  }

  it("accepts a valid file", async () => {
    const { result } = await validate("ok.yaml", VALID);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /valid scenario ok/);
  });

  it("reports bad YAML with its line and the field it is in", async () => {
    await expectOneLineError("bad-yaml.yaml", VALID.replace("rate: 50", "rate: 50: 3"), 2, "rate: invalid YAML");
  });

  it("reports an unknown field", async () => {
    const message = await expectOneLineError("unknown.yaml", VALID.replace("  processes: 2", "  processes: 2\n  colour: red"), 5, "workers.colour");
    assert.match(message, /unknown field/);
  });

  it("reports a negative rate", async () => {
    const message = await expectOneLineError("negative.yaml", VALID.replace("poison-rate: 0.02", "poison-rate: -0.1"), 7, "handler.poison-rate");
    assert.match(message, /between 0 and 1/);
  });

  it("reports an unknown fault kind", async () => {
    const message = await expectOneLineError("fault.yaml", VALID.replace("kind: kill-worker", "kind: explode"), 9, "faults[0].kind");
    assert.match(message, /unknown fault "explode"/);
  });
});
