/**
 * A throwaway redis-server for the benchmark: its own process on a free loopback port, no
 * persistence, stopped by pid — the same server the tests start (test/support/redis-server.ts).
 */
import { execFileSync } from 'node:child_process';

import { RedisServer as ServerProcess } from '../test/support/redis-server.js';

export interface RedisServer {
	readonly port: number;
	readonly url: string;
	readonly version: string;
	stop(): Promise<void>;
}

export function redisServerVersion(): string {
	try {
		return /v=(\S+)/.exec(execFileSync('redis-server', ['--version'], { encoding: 'utf8' }))?.[1] ?? 'unknown';
	} catch {
		return 'not installed';
	}
}

export async function startRedisServer(): Promise<RedisServer> {
	const server = await ServerProcess.started();
	return { port: server.port, url: server.url, version: redisServerVersion(), stop: () => server.destroy() };
}
