/**
 * drainWithin (src/core/nats/connection.ts) on its two failure paths, against a real nats-server: a
 * drain that rejects (the server stopped: the client is reconnecting) and a drain that overruns (the
 * server paused: the drain's closing flush is never answered). Either way it resolves, never throws,
 * and leaves the connection closed.
 */
import assert from "node:assert/strict";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { drainWithin } from "../../src/core/nats/connection.js";
import { NatsServer } from "../../src/core/fleet/nats-server.js";

describe("drainWithin", function () {
  this.timeout(60_000);
  let server: NatsServer;
  let nc: NatsConnection;

  beforeEach(async () => {
    server = await NatsServer.start();
    // As orderq connects: reconnecting for ever, so nothing but the drain or a close ends the connection.
    nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    nc.subscribe("orders.>"); // something for the drain to drain
  });

  afterEach(async () => {
    await nc.close().catch(() => undefined);
    server.resume();
    await server.dispose();
  });

  it("closes the connection and resolves when the drain rejects (server stopped)", async () => {
    const status = nc.status();
    const disconnected = (async () => {
      for await (const s of status) if (s.type === "disconnect") return;
    })();
    await server.stop();
    await disconnected;
    // A drain of a disconnected connection rejects ("connection disconnected") long before this limit.
    await drainWithin(nc, 30_000);
    assert.equal(nc.isClosed(), true, "closed after the drain failed");
  });

  it("closes the connection and resolves when the drain overruns (server paused, its flush never answered)", async () => {
    await server.pause();
    await drainWithin(nc, 300);
    assert.equal(nc.isClosed(), true, "closed once the drain ran out of time");
  });
});
