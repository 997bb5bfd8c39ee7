/** A fresh nats-server per test file (JetStream, temp store, free loopback port), stopped afterwards. */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NatsServer, type ServerOptions } from "../../src/core/fleet/nats-server.js";

export interface ServerFixture {
  server: NatsServer;
  nc: NatsConnection;
}

/**
 * Call inside a mocha `describe`: `const fx = useServer();` then use `fx.server.url` in tests. With
 * `auth`, the server requires that login and `fx.nc` uses it.
 */
export function useServer(options: Pick<ServerOptions, "auth"> = {}): ServerFixture {
  const fx = {} as ServerFixture;
  before(async function () {
    this.timeout(60_000);
    fx.server = await NatsServer.start(options);
    fx.nc = await connect({ servers: fx.server.url, user: options.auth?.user, pass: options.auth?.password });
  });
  after(async function () {
    this.timeout(30_000);
    await fx.nc?.close();
    await fx.server?.dispose();
  });
  return fx;
}
