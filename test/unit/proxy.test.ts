/**
 * The chaos engine's TCP proxy on its own, between a plain echo server and a client: what passes while
 * open, slowed, cut and healed.
 */
import assert from "node:assert/strict";
import { connect, createServer, type Server, type Socket } from "node:net";
import { TcpProxy } from "../../src/core/chaos/proxy.js";
import { waitFor } from "../support/wait.js";

/** A client through the proxy that collects what comes back and notices when it is closed. */
async function dial(port: number): Promise<{ socket: Socket; received: () => string; closed: Promise<void> }> {
  const socket = connect(port, "127.0.0.1");
  let data = "";
  socket.on("data", (chunk: Buffer) => (data += chunk.toString()));
  socket.on("error", () => {}); // a cut shows as a close
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return { socket, received: () => data, closed };
}

/** Waits (up to 5 s) for what a socket receives or a counter shows. */
const until = (what: string, condition: () => boolean) => waitFor(what, condition, 5_000, 5);

describe("chaos TCP proxy", () => {
  let echo: Server;
  let upstream: { host: string; port: number };
  let proxy: TcpProxy; // a fresh one per test: no test counts another's connections
  before(async () => {
    echo = createServer((s) => s.pipe(s));
    await new Promise<void>((resolve) => echo.listen(0, "127.0.0.1", resolve));
    const address = echo.address();
    upstream = { host: "127.0.0.1", port: typeof address === "object" && address ? address.port : 0 };
  });
  beforeEach(async () => {
    proxy = await TcpProxy.start(upstream);
  });
  afterEach(() => proxy.close());
  after(() => echo.close());

  it("forwards both ways while open", async () => {
    const c = await dial(proxy.port);
    c.socket.write("hello");
    await until("the echo", () => c.received() === "hello");
    c.socket.destroy();
    await c.closed;
  });

  it("delays chunks while slow and counts them; one sent after heal still arrives after them", async () => {
    const c = await dial(proxy.port);
    const before = proxy.counters.delayed;
    proxy.slow(300);
    c.socket.write("a");
    await until("a delayed chunk", () => proxy.counters.delayed > before); // "a" is held in the proxy
    proxy.heal();
    c.socket.write("b"); // no delay now, but it must wait behind "a"
    await until("both chunks", () => c.received().length === 2);
    assert.equal(c.received(), "ab");
    c.socket.destroy();
    await c.closed;
  });

  it("cut closes the connections it carries and refuses new ones; heal lets them through again", async () => {
    const open = await dial(proxy.port);
    const other = await dial(proxy.port);
    open.socket.write("x");
    other.socket.write("y");
    await until("both echoes", () => open.received() === "x" && other.received() === "y");
    assert.equal(proxy.cut(), 2, "connections destroyed");
    await other.closed;
    await open.closed;

    const refusedBefore = proxy.counters.refused;
    const refused = await dial(proxy.port); // the listener accepts, then the proxy destroys it
    await refused.closed;
    assert.equal(refused.received(), "");
    assert.equal(proxy.counters.refused, refusedBefore + 1);

    proxy.heal();
    const again = await dial(proxy.port);
    again.socket.write("back");
    await until("the echo after heal", () => again.received() === "back");
    again.socket.destroy();
  });
});
