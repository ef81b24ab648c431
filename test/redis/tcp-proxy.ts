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
	/** Destroys every connection and stops listening. */
	close(): Promise<void>;
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
}

/** Starts a proxy to `127.0.0.1:targetPort` on a free loopback port. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
	const pairs = new Set<Pair>();
	let blackHoled = false;
	let accepted = 0;

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

	const server: Server = createServer({ allowHalfOpen: true }, (client) => {
		accepted++;
		const upstream = createConnection({ host: '127.0.0.1', port: targetPort, allowHalfOpen: true });
		const pair: Pair = { client, upstream, toUpstream: [], toClient: [], clientEnded: false, upstreamEnded: false, clientClosed: false, upstreamClosed: false };
		pairs.add(pair);
		client.on('data', (chunk: Buffer) => {
			pair.toUpstream.push(chunk);
			settle(pair);
		});
		upstream.on('data', (chunk: Buffer) => {
			pair.toClient.push(chunk);
			settle(pair);
		});
		client.on('end', () => {
			pair.clientEnded = true;
			settle(pair);
		});
		upstream.on('end', () => {
			pair.upstreamEnded = true;
			settle(pair);
		});
		// Errors are followed by 'close'; the proxy only passes closes on.
		client.on('error', () => {});
		upstream.on('error', () => {});
		client.on('close', () => {
			pair.clientClosed = true;
			settle(pair);
		});
		upstream.on('close', () => {
			pair.upstreamClosed = true;
			settle(pair);
		});
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
		blackHole() {
			blackHoled = true;
		},
		resume() {
			blackHoled = false;
			for (const pair of [...pairs]) settle(pair);
		},
		reset() {
			for (const pair of [...pairs]) {
				pair.toClient.length = 0;
				pair.toUpstream.length = 0;
				if (!pair.client.destroyed) pair.client.resetAndDestroy();
				pair.upstream.destroy();
				pairs.delete(pair);
			}
		},
		async close() {
			for (const pair of pairs) {
				pair.client.destroy();
				pair.upstream.destroy();
			}
			pairs.clear();
			await new Promise<void>((resolve) => server.close(() => resolve()));
		},
	};
}
