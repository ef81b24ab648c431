/**
 * A TCP proxy on 127.0.0.1 in front of a redis-server, for tests that break the network between
 * a client and Redis without touching either:
 *
 * - `blackHole()`: stops forwarding in both directions, without closing anything. Bytes, FINs and
 *   closes of either side are held, as a network that silently drops packets would (TCP would
 *   retransmit them once the path is back). New connections are accepted and held too. Neither
 *   side notices anything until it waits for a reply.
 * - `resume()`: forwards again: what was held is delivered, in order, and held closes are applied.
 * - `reset()`: destroys every connection with a TCP RST (the client gets ECONNRESET).
 * - `setLatency(ms)`: delays every chunk, FIN and close by `ms` in each direction (a long link:
 *   order is kept, nothing is throttled). 0, the default, forwards at once. A change applies to
 *   what arrives from then on; what is already delayed keeps its time.
 */
import { type Server, type Socket, createConnection, createServer } from 'node:net';

export interface TcpProxy {
	/** The proxy's port on 127.0.0.1. */
	readonly port: number;
	/** Whether forwarding is stopped. */
	readonly blackHoled: boolean;
	/** How many client connections the proxy has accepted so far. */
	readonly accepted: number;
	/** How many client connections are open. */
	readonly open: number;
	/** Stops forwarding in both directions; nothing is closed. */
	blackHole(): void;
	/** Forwards again, delivering what was held. */
	resume(): void;
	/** Resets every open connection (RST to the client, the upstream side destroyed). */
	reset(): void;
	/** How many connections `reset()` has reset so far. */
	readonly resets: number;
	/** The delay added to each chunk, FIN and close, per direction. */
	readonly latencyMs: number;
	/** Delays what arrives from now on by `ms` per direction (0: forward at once). */
	setLatency(ms: number): void;
	/** Destroys every connection and stops listening. */
	close(): Promise<void>;
}

// What arrived from one side and waits out the latency before it is applied, in order.
interface Lane {
	readonly queue: Array<{ readonly due: number; readonly apply: () => void }>;
	timer: NodeJS.Timeout | undefined;
}

// One proxied connection and what the black hole holds of it.
interface Pair {
	readonly client: Socket;
	readonly upstream: Socket;
	readonly toUpstream: Buffer[];
	readonly toClient: Buffer[];
	clientEnded: boolean;
	upstreamEnded: boolean;
	clientClosed: boolean;
	upstreamClosed: boolean;
	// From the client to Redis, and back.
	readonly up: Lane;
	readonly down: Lane;
}

/** Starts a proxy to `127.0.0.1:targetPort` on a free loopback port. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
	const pairs = new Set<Pair>();
	let blackHoled = false;
	let accepted = 0;
	let resets = 0;
	let latencyMs = 0;

	// Applies what one side did to the other, unless the black hole holds it.
	const settle = (pair: Pair): void => {
		if (blackHoled) return;
		for (const chunk of pair.toUpstream.splice(0)) if (!pair.upstream.destroyed) pair.upstream.write(chunk);
		for (const chunk of pair.toClient.splice(0)) if (!pair.client.destroyed) pair.client.write(chunk);
		if (pair.clientClosed) pair.upstream.destroy();
		if (pair.upstreamClosed) pair.client.destroy();
		if (pair.clientEnded && !pair.upstream.writableEnded) pair.upstream.end();
		if (pair.upstreamEnded && !pair.client.writableEnded) pair.client.end();
		if (pair.client.destroyed && pair.upstream.destroyed) pairs.delete(pair);
	};

	// Applies what arrived on `lane` once the latency has passed (at once without latency, unless
	// earlier arrivals still wait: order is kept).
	const arrive = (pair: Pair, lane: Lane, apply: () => void): void => {
		if (latencyMs === 0 && lane.queue.length === 0) {
			apply();
			settle(pair);
			return;
		}
		// A connection reset or closed by the proxy: nothing of it is delivered any more.
		if (!pairs.has(pair)) return;
		const last = lane.queue.at(-1)?.due ?? 0;
		lane.queue.push({ due: Math.max(performance.now() + latencyMs, last), apply });
		pump(pair, lane);
	};
	const pump = (pair: Pair, lane: Lane): void => {
		const head = lane.queue[0];
		if (lane.timer !== undefined || head === undefined) return;
		lane.timer = setTimeout(() => {
			lane.timer = undefined;
			const now = performance.now();
			while (lane.queue[0] !== undefined && lane.queue[0].due <= now + 1) lane.queue.shift()!.apply();
			settle(pair);
			pump(pair, lane);
		}, Math.max(0, head.due - performance.now()));
	};
	const drop = (pair: Pair): void => {
		for (const lane of [pair.up, pair.down]) {
			clearTimeout(lane.timer);
			lane.timer = undefined;
			lane.queue.length = 0;
		}
	};

	const server: Server = createServer({ allowHalfOpen: true }, (client) => {
		accepted++;
		const upstream = createConnection({ host: '127.0.0.1', port: targetPort, allowHalfOpen: true });
		const pair: Pair = {
			client,
			upstream,
			toUpstream: [],
			toClient: [],
			clientEnded: false,
			upstreamEnded: false,
			clientClosed: false,
			upstreamClosed: false,
			up: { queue: [], timer: undefined },
			down: { queue: [], timer: undefined },
		};
		pairs.add(pair);
		client.on('data', (chunk: Buffer) => arrive(pair, pair.up, () => pair.toUpstream.push(chunk)));
		upstream.on('data', (chunk: Buffer) => arrive(pair, pair.down, () => pair.toClient.push(chunk)));
		client.on('end', () => arrive(pair, pair.up, () => (pair.clientEnded = true)));
		upstream.on('end', () => arrive(pair, pair.down, () => (pair.upstreamEnded = true)));
		// Errors are followed by 'close'; the proxy only passes closes on.
		client.on('error', () => {});
		upstream.on('error', () => {});
		client.on('close', () => arrive(pair, pair.up, () => (pair.clientClosed = true)));
		upstream.on('close', () => arrive(pair, pair.down, () => (pair.upstreamClosed = true)));
	});
	await new Promise<void>((resolve, reject) => {
		server.once('error', reject);
		server.listen(0, '127.0.0.1', () => resolve());
	});
	const address = server.address();
	if (typeof address !== 'object' || address === null) throw new Error('The proxy has no port');

	return {
		port: address.port,
		get blackHoled() {
			return blackHoled;
		},
		get accepted() {
			return accepted;
		},
		get open() {
			return [...pairs].filter((pair) => !pair.client.destroyed).length;
		},
		get resets() {
			return resets;
		},
		get latencyMs() {
			return latencyMs;
		},
		setLatency(ms: number) {
			if (!(Number.isFinite(ms) && ms >= 0)) throw new RangeError(`A latency is a number of milliseconds ≥ 0, not ${ms}`);
			latencyMs = ms;
		},
		blackHole() {
			blackHoled = true;
		},
		resume() {
			blackHoled = false;
			for (const pair of [...pairs]) settle(pair);
		},
		reset() {
			for (const pair of [...pairs]) {
				drop(pair);
				pair.toClient.length = 0;
				pair.toUpstream.length = 0;
				if (!pair.client.destroyed) {
					resets++;
					pair.client.resetAndDestroy();
				}
				pair.upstream.destroy();
				pairs.delete(pair);
			}
		},
		async close() {
			for (const pair of pairs) {
				drop(pair);
				pair.client.destroy();
				pair.upstream.destroy();
			}
			pairs.clear();
			await new Promise<void>((resolve) => server.close(() => resolve()));
		},
	};
}
