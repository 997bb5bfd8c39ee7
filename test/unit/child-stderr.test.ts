/**
 * `orderq work -p N` on a terminal: the workers' stderr lines reach the supervisor whole and are
 * printed through its StatusLine, above the live status line, never glued onto it.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LineSplitter, MAX_LINE_CHARS } from "../../src/core/base/lines.js";
import { Supervisor } from "../../src/core/fleet/supervisor.js";
import { StatusLine } from "../../src/cli/render.js";
import { waitFor } from "../support/wait.js";

function split(chunks: string[], end = true): string[] {
  const lines: string[] = [];
  const splitter = new LineSplitter((line) => lines.push(line));
  for (const chunk of chunks) splitter.push(chunk);
  if (end) splitter.end();
  return lines;
}

describe("LineSplitter", () => {
  it("passes on whole lines, however the text was cut into chunks", () => {
    assert.deepEqual(split(["a\nb", "c\n", "\nd"]), ["a", "bc", "", "d"]);
    assert.deepEqual(split(["one\r\ntwo\r", "\n"]), ["one", "two"]);
  });

  it("holds a line until its end, and passes on an unfinished last line at the end of the stream", () => {
    assert.deepEqual(split(["no end yet"], false), []);
    assert.deepEqual(split(["no end yet"]), ["no end yet"]);
    assert.deepEqual(split(["done\n"]), ["done"], "nothing more at the end");
  });

  it("cuts a line longer than MAX_LINE_CHARS into pieces instead of buffering it whole", () => {
    const lines = split(["x".repeat(MAX_LINE_CHARS * 2 + 5)], false);
    assert.deepEqual(
      lines.map((l) => l.length),
      [MAX_LINE_CHARS, MAX_LINE_CHARS],
    );
  });
});

describe("a supervisor's workers' stderr", function () {
  this.timeout(30_000);

  it("is printed line by line through the supervisor's StatusLine, above the status line", async () => {
    const dir = mkdtempSync(join(tmpdir(), "orderq-child-stderr-"));
    const script = join(dir, "child.mjs");
    // A line, then half a line, the rest of it later: what a worker writing mid-line looks like.
    writeFileSync(
      script,
      "process.stderr.write(`orderq: worker ${process.argv[2]}: first line\\nsecond `);\n" +
        'setTimeout(() => process.stderr.write("half\\n"), 100);\n' +
        "setInterval(() => {}, 1000);\n",
    );
    const written: string[] = [];
    const status = new StatusLine({ isTTY: true, write: (text) => written.push(text) });
    status.start(() => "STATUS 1 worker", 60_000);
    const printed: string[] = [];
    const supervisor = new Supervisor({
      script,
      args: (id) => [id],
      restartDelayMs: 60_000,
      stderrLine: (_id, line) => {
        printed.push(line);
        status.print(line);
      },
    });
    try {
      supervisor.spawn();
      await waitFor("both lines", () => printed.length >= 2, 20_000, 20);
    } finally {
      await supervisor.stop(5_000);
      status.stop();
    }
    assert.deepEqual(printed, ["orderq: worker w1: first line", "second half"]);
    const out = written.join("");
    assert.ok(out.includes("\r\x1b[Korderq: worker w1: first line\n\r\x1b[KSTATUS 1 worker"), JSON.stringify(out));
    assert.ok(out.includes("\r\x1b[Ksecond half\n\r\x1b[KSTATUS 1 worker"), JSON.stringify(out));
    assert.doesNotMatch(out, /STATUS 1 worker(?!\r|$)/, "nothing is written after the status line but a clear of it");
  });
});
