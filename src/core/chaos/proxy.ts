/**
 * A TCP proxy the nemesis controls, placed between NATS clients and a server: `cut` destroys every
 * connection and refuses new ones until `heal`; `slow` delays every chunk (order preserved).
 */
import { connect, createServer, type Server, type Socket } from "node:net";

export interface ProxyCounters {
  /** Connections refused while cut. */
  refused: number;
  /** Chunks held back while slow. */
  delayed: number;
}

/** Writes chunks to `out` in order, each no earlier than its release time. */
class DelayedWriter {
  private readonly queue: { chunk: Buffer; at: number }[] = [];
  private timer?: NodeJS.Timeout;

  constructor(private readonly out: Socket) {}

  write(chunk: Buffer, delayMs: number): boolean {
    if (delayMs <= 0 && this.queue.length === 0) {
      this.out.write(chunk);
      return false;
    }
    this.queue.push({ chunk, at: Date.now() + delayMs });
    this.schedule();
    return true;
  }

  private schedule(): void {
    if (this.timer || this.queue.length === 0) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        const now = Date.now();
        while (this.queue.length > 0 && this.queue[0].at <= now) {
          const next = this.queue.shift();
          if (next && !this.out.destroyed) this.out.write(next.chunk);
        }
        this.schedule();
      },
      Math.max(0, this.queue[0].at - Date.now()),
    );
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.queue.length = 0;
  }
}

export interface Upstream {
  host: string;
  port: number;
}

export class TcpProxy {
  readonly counters: ProxyCounters = { refused: 0, delayed: 0 };
  private mode: "open" | "cut" = "open";
  private delayMs = 0;
  private readonly pairs = new Set<[Socket, Socket]>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly upstream: Upstream,
  ) {}

  /** Listens on a free loopback port and forwards to `upstream`. */
  static async start(upstream: Upstream): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined;
    const server = createServer((client) => proxy?.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    });
    const address = server.address();
    const port = typeof address === "object" && address ? address.port : 0;
    proxy = new TcpProxy(server, port, upstream);
    return proxy;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  private accept(client: Socket): void {
    if (this.mode === "cut") {
      this.counters.refused++;
      client.destroy();
      return;
    }
    const upstream = connect(this.upstream.port, this.upstream.host);
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    const toUpstream = new DelayedWriter(upstream);
    const toClient = new DelayedWriter(client);
    const close = () => {
      this.pairs.delete(pair);
      toUpstream.dispose();
      toClient.dispose();
      client.destroy();
      upstream.destroy();
    };
    client.on("data", (chunk: Buffer) => this.forward(toUpstream, chunk));
    upstream.on("data", (chunk: Buffer) => this.forward(toClient, chunk));
    for (const socket of pair) {
      socket.on("error", close);
      socket.on("close", close);
    }
  }

  private forward(writer: DelayedWriter, chunk: Buffer): void {
    if (writer.write(chunk, this.delayMs)) this.counters.delayed++;
  }

  /** Destroys every connection and refuses new ones; returns how many were destroyed. */
  cut(): number {
    this.mode = "cut";
    const destroyed = this.pairs.size;
    for (const [client, upstream] of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
    return destroyed;
  }

  slow(delayMs: number): void {
    this.delayMs = delayMs;
  }

  /** Accepts connections again, without delay. */
  heal(): void {
    this.mode = "open";
    this.delayMs = 0;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** One proxy per server node for one kind of client (workers or producers). */
export class ProxiedPath {
  private constructor(readonly proxies: TcpProxy[]) {}

  static async start(upstreams: Upstream[]): Promise<ProxiedPath> {
    return new ProxiedPath(await Promise.all(upstreams.map((u) => TcpProxy.start(u))));
  }

  get url(): string {
    return this.proxies.map((p) => p.url).join(",");
  }

  cut(): number {
    return this.proxies.reduce((sum, p) => sum + p.cut(), 0);
  }

  slow(delayMs: number): void {
    for (const p of this.proxies) p.slow(delayMs);
  }

  heal(): void {
    for (const p of this.proxies) p.heal();
  }

  counters(): ProxyCounters {
    const total: ProxyCounters = { refused: 0, delayed: 0 };
    for (const p of this.proxies) for (const k of Object.keys(total) as (keyof ProxyCounters)[]) total[k] += p.counters[k];
    return total;
  }

  async close(): Promise<void> {
    await Promise.all(this.proxies.map((p) => p.close()));
  }
}
