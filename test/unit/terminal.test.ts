/** What `orderq work` writes on a terminal: link changes once each, log lines never glued to the status line. */
import assert from "node:assert/strict";
import { fitColumns, keyValueTable, StatusLine, table } from "../../src/cli/render.js";
import { nextLinkState, type LinkState } from "../../src/core/nats/connection.js";

describe("link state lines", () => {
  it("tells each change once, however many reconnect attempts come in between", () => {
    const events = [
      { type: "ping" },
      { type: "disconnect", server: "127.0.0.1:4333" },
      { type: "reconnecting" },
      { type: "reconnecting" },
      { type: "reconnecting" },
      { type: "reconnect", server: "127.0.0.1:4333" },
      { type: "reconnect", server: "127.0.0.1:4333" },
      { type: "disconnect", server: "127.0.0.1:4333" },
      { type: "disconnect", server: "127.0.0.1:4333" },
    ];
    let state: LinkState = "connected";
    const lines: string[] = [];
    for (const e of events) {
      const next = nextLinkState(state, e);
      state = next.state;
      if (next.line) lines.push(next.line);
    }
    assert.deepEqual(lines, [
      "disconnected from NATS (127.0.0.1:4333)",
      "reconnecting to NATS…",
      "reconnected to NATS (127.0.0.1:4333)",
      "disconnected from NATS (127.0.0.1:4333)",
    ]);
  });
});

describe("StatusLine", () => {
  const fakeOut = (isTTY: boolean) => {
    const out = { isTTY, text: "", write: (s: string) => (out.text += s) };
    return out;
  };

  it("on a terminal, clears the status line before a log line and redraws it after", () => {
    const out = fakeOut(true);
    const status = new StatusLine(out);
    status.start(() => "committed 5", 60_000);
    status.print("orderq: disconnected from NATS");
    status.stop();
    assert.equal(out.text, "\r\x1b[Korderq: disconnected from NATS\n\r\x1b[Kcommitted 5\r\x1b[K");
  });

  it("piped, writes the log line alone and no control characters", () => {
    const out = fakeOut(false);
    const status = new StatusLine(out);
    status.start(() => "committed 5", 1);
    status.print("orderq: reconnected to NATS");
    status.stop();
    assert.equal(out.text, "orderq: reconnected to NATS\n");
  });
});

describe("tables on a terminal", () => {
  const longest = (text: string) => Math.max(...text.split("\n").map((l) => l.length));
  const head = ["seq", "order id", "reason", "last error"];
  const rows = [
    [1, "ord-000001", "non-retryable", "the payment provider refused the card: insufficient funds on the account ending 4242"],
    [2, "ord-000002", "invalid-payload", "quantity: expected a positive integer, got -3 (and a very long explanation follows here)"],
  ];

  it("fit the terminal's width: long cells are wrapped, short columns kept whole", () => {
    const natural = table(head, rows, undefined);
    assert.ok(longest(natural) > 100, "the negative control: unfitted, the table is wider than the terminal");
    const text = table(head, rows, 60);
    assert.ok(longest(text) <= 60, text);
    assert.match(text, /ord-000001/, "a column that fits is not cut");
    assert.match(text, /insufficient/, "a long cell is wrapped, not dropped");
  });

  it("are unchanged when piped (no width) or when they already fit", () => {
    assert.equal(table(head, rows, undefined), table(head, rows, 1000));
    const kv: [string, string | number][] = [
      ["stream", "ORDERS"],
      ["note", "x".repeat(120)],
    ];
    assert.equal(keyValueTable(kv, undefined), keyValueTable(kv, 1000));
    assert.ok(longest(keyValueTable(kv, 50)) <= 50);
  });

  it("narrow the widest columns first, none below a floor", () => {
    assert.equal(fitColumns([10, 20], 40), undefined);
    assert.deepEqual(fitColumns([10, 50, 30], 64), [10, 25, 25]);
    assert.deepEqual(fitColumns([10, 10, 10], 10), [8, 8, 8], "too many columns: each stops at the floor");
    assert.deepEqual(fitColumns([16, 50, 30], 64, [16, 12, 12]), [16, 22, 22], "a column's longest word is kept whole while others can give");
    assert.deepEqual(fitColumns([16, 20], 30, [16, 12]), [16, 11], "then the others give below their words, the first column last");
    assert.deepEqual(fitColumns([16, 20], 20, [16, 12]), [9, 8], "then every column gives, down to the floor");
  });
});
