import { readFileSync } from "node:fs";
import {
  connect,
  credsAuthenticator,
  nkeyAuthenticator,
  type NatsConnection,
  type ConnectionOptions,
  type QueuedIterator,
  type Status,
} from "@nats-io/transport-node";
import { EnvironmentError, InputError, errorMessage } from "../base/errors.js";
import { coalesceWrites } from "./client-internals.js";

export const DEFAULT_SERVER = "nats://127.0.0.1:4222";

export interface NatsOptions {
  /** One URL or several separated by commas. */
  server: string;
  user?: string;
  password?: string;
  token?: string;
  /** Path of a .creds file (JWT + nkey seed). */
  creds?: string;
  /** Path of a CA certificate for TLS. */
  tlsCa?: string;
  /** Path of an nkey seed file (natscli's `--nkey`). */
  nkey?: string;
  /** Client certificate and its key for TLS (mutual TLS). */
  tlsCert?: string;
  tlsKey?: string;
  /** Connection name shown by the server. */
  name?: string;
  /** Batch socket writes per event-loop turn (hot paths: worker, producer). */
  coalesceWrites?: boolean;
}

/**
 * Connects with a bounded wait: an unreachable server is a clear EnvironmentError within a few
 * seconds, never a hang. Once connected the client reconnects forever (brokers restart in chaos runs).
 */
export async function connectNats(given: NatsOptions, timeoutMs = 3000): Promise<NatsConnection> {
  const options = withUrlCredentials(given);
  const servers = options.server
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (servers.length === 0) throw new InputError("--server: no server URL given");
  const opts: ConnectionOptions = {
    servers,
    name: options.name ?? "orderq",
    timeout: timeoutMs,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    // Async stack traces cost a stack capture per request on the hot path (README, Performance).
    noAsyncTraces: true,
  };
  if (options.user !== undefined) {
    opts.user = options.user;
    opts.pass = options.password ?? "";
  }
  if (options.token !== undefined) opts.token = options.token;
  if (options.creds !== undefined) opts.authenticator = credsAuthenticator(readFileOrFail(options.creds, "--creds"));
  else if (options.nkey !== undefined)
    opts.authenticator = nkeyAuthenticator(new TextEncoder().encode(new TextDecoder().decode(readFileOrFail(options.nkey, "--nkey")).trim()));
  if (options.tlsCa !== undefined || options.tlsCert !== undefined) {
    opts.tls = { caFile: options.tlsCa, certFile: options.tlsCert, keyFile: options.tlsKey };
  }
  try {
    const nc = await connect(opts);
    if (options.coalesceWrites && !coalesceWrites(nc)) warnUncoalesced();
    return nc;
  } catch (err) {
    throw new EnvironmentError(`cannot connect to NATS at ${servers.join(",")}: ${errorMessage(err)}`);
  }
}

/**
 * Credentials written in the server URLs (`nats://user:pass@host:port`, or `nats://token@host:port`,
 * the NATS convention) moved into the options, and the URLs without them: only these clean URLs are
 * ever printed or put on a worker's command line. Credentials given apart (flags, NATS_* variables, a
 * context) win over the URL's.
 */
export function withUrlCredentials(o: NatsOptions): NatsOptions {
  let user: string | undefined;
  let password: string | undefined;
  const servers = o.server.split(",").map((raw) => {
    const s = raw.trim();
    const at = s.lastIndexOf("@");
    if (at < 0) return s;
    const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(s)?.[0] ?? "";
    const info = s.slice(scheme.length, at);
    if (user === undefined) {
      const colon = info.indexOf(":");
      user = decode(colon < 0 ? info : info.slice(0, colon));
      password = colon < 0 ? undefined : decode(info.slice(colon + 1));
    }
    return scheme + s.slice(at + 1);
  });
  const out: NatsOptions = { ...o, server: servers.join(",") };
  if (user === undefined || o.user !== undefined || o.token !== undefined || o.creds !== undefined || o.nkey !== undefined) return out;
  if (password === undefined) out.token = user;
  else {
    out.user = user;
    out.password = password;
  }
  return out;
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * The NATS_* variables that the CLI's connection flags read: how credentials reach the worker
 * processes orderq starts (arguments would show them to anyone running `ps`).
 */
export function credentialEnv(o: NatsOptions): NodeJS.ProcessEnv {
  const pairs: [string, string | undefined][] = [
    ["NATS_USER", o.user],
    ["NATS_PASSWORD", o.password],
    ["NATS_TOKEN", o.token],
    ["NATS_CREDS", o.creds],
    ["NATS_CA", o.tlsCa],
    ["NATS_NKEY", o.nkey],
    ["NATS_CERT", o.tlsCert],
    ["NATS_KEY", o.tlsKey],
  ];
  return Object.fromEntries(pairs.filter(([, value]) => value !== undefined));
}

let warned = false;

/**
 * The client's internals are not the shape the patch knows (another client version): the connection
 * works as shipped, only slower. Said once per process, on stderr, so a throughput drop has a cause.
 */
function warnUncoalesced(): void {
  if (warned) return;
  warned = true;
  process.emitWarning("this NATS client's internals differ from the pinned 3.3.1: socket writes are not coalesced (correct, slower)", {
    code: "ORDERQ_NO_WRITE_COALESCING",
  });
}

function readFileOrFail(path: string, flag: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new InputError(`${flag}: cannot read ${path}: ${errorMessage(err)}`);
  }
}

/** The connection as an operator is told about it: one line per change of this, never per attempt. */
export type LinkState = "connected" | "disconnected" | "reconnecting";

/**
 * The next state of the link after a client status event (`nc.status()`: disconnect, reconnecting,
 * reconnect; the others leave it as it is), and the line to show when it changed. `reconnecting`
 * comes once per attempt (every reconnectTimeWait) while the server is away: only the first one is a
 * change. `server` is the host:port the client names, never a URL with credentials.
 */
export function nextLinkState(state: LinkState, s: { type: string; server?: string }): { state: LinkState; line?: string } {
  const at = s.server ? ` (${s.server})` : "";
  if (s.type === "disconnect" && state !== "disconnected") return { state: "disconnected", line: `disconnected from NATS${at}` };
  if (s.type === "reconnecting" && state !== "reconnecting") return { state: "reconnecting", line: "reconnecting to NATS…" };
  if (s.type === "reconnect" && state !== "connected") return { state: "connected", line: `reconnected to NATS${at}` };
  return { state };
}

/**
 * Calls `onChange` with the new state and its line each time `nc`'s link changes (nextLinkState),
 * until `stop()` or the connection closes. Returns at once; the watch runs in the background. The one
 * follower of `nc.status()` for the link: the CLI's lines, the gateway's 503s, the worker's heartbeats.
 */
export function followLink(nc: NatsConnection, onChange: (state: LinkState, line: string) => void): { stop(): void } {
  // Declared as an AsyncIterable; the client returns its QueuedIterator, whose stop() ends the watch.
  const status = nc.status() as AsyncIterable<Status> & Partial<Pick<QueuedIterator<Status>, "stop">>;
  void (async () => {
    let state: LinkState = "connected";
    for await (const s of status) {
      const next = nextLinkState(state, s);
      state = next.state;
      if (next.line) onChange(state, next.line);
    }
  })();
  return { stop: () => status.stop?.() };
}

/** Calls `onChange` with a line each time `nc`'s link changes (followLink), until the connection closes. */
export function watchLink(nc: NatsConnection, onChange: (line: string) => void): void {
  followLink(nc, (_state, line) => onChange(line));
}

/**
 * Drains `nc`, giving up after `withinMs` and closing it instead. A drain ends with a flush that waits
 * for the server's answer: with the server stopped or unreachable it would wait until the client gave
 * up on the connection, minutes later. For a caller that has nothing left in flight, so nothing to
 * lose by closing (the gateway after answering its requests). Never throws.
 */
export async function drainWithin(nc: NatsConnection, withinMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const drained = nc.drain().then(
    () => true,
    () => false,
  );
  const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), withinMs)));
  const ok = await Promise.race([drained, timedOut]);
  clearTimeout(timer);
  if (!ok && !nc.isClosed()) await nc.close().catch(() => undefined);
}
