/**
 * A throwaway redis-server for the benchmark: its own process on a free loopback port, no
 * persistence (`--save '' --appendonly no`), stopped by pid (SIGTERM, then SIGKILL).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisServer {
	readonly port: number;
	readonly url: string;
	readonly version: string;
	stop(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;

export function redisServerVersion(): string {
	try {
		return /v=(\S+)/.exec(execFileSync('redis-server', ['--version'], { encoding: 'utf8' }))?.[1] ?? 'unknown';
	} catch {
		return 'not installed';
	}
}

export async function startRedisServer(): Promise<RedisServer> {
	const dir = mkdtempSync(join(tmpdir(), 'runledger-bench-redis-'));
	let lastError: unknown;
	// A port found free can be taken before redis-server binds it: try a few.
	for (let attempt = 0; attempt < 3; attempt++) {
		const port = await freePort();
		try {
			const child = await start(port, dir);
			const onExit = (): void => {
				if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
			};
			process.once('exit', onExit);
			return {
				port,
				url: `redis://127.0.0.1:${port}`,
				version: redisServerVersion(),
				stop: async () => {
					process.off('exit', onExit);
					await stop(child);
					rmSync(dir, { recursive: true, force: true });
				},
			};
		} catch (error) {
			lastError = error;
		}
	}
	rmSync(dir, { recursive: true, force: true });
	throw lastError;
}

function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const probe = createServer();
		probe.once('error', reject);
		probe.listen(0, '127.0.0.1', () => {
			const address = probe.address();
			probe.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('No port'))));
		});
	});
}

async function start(port: number, dir: string): Promise<ChildProcess> {
	const child = spawn(
		'redis-server',
		['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'yes', '--maxmemory-policy', 'noeviction'],
		{ stdio: ['ignore', 'pipe', 'pipe'] },
	);
	let output = '';
	child.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4_000)));
	child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4_000)));
	let exited = false;
	child.once('exit', () => (exited = true));
	child.once('error', () => (exited = true));
	const deadline = Date.now() + START_TIMEOUT_MS;
	while (Date.now() < deadline) {
		if (exited) throw new Error(`redis-server exited at start on port ${port}:\n${output}`);
		if (await pings(port)) return child;
		await new Promise((resolve) => setTimeout(resolve, 50));
	}
	await stop(child);
	throw new Error(`redis-server did not answer PING on port ${port} within ${START_TIMEOUT_MS} ms:\n${output}`);
}

function pings(port: number): Promise<boolean> {
	return new Promise((resolve) => {
		const socket = createConnection({ host: '127.0.0.1', port });
		let reply = '';
		const done = (ok: boolean): void => {
			socket.destroy();
			resolve(ok);
		};
		socket.setTimeout(1_000, () => done(false));
		socket.once('error', () => done(false));
		socket.once('connect', () => socket.write('PING\r\n'));
		socket.on('data', (chunk) => {
			reply += chunk.toString();
			if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
		});
	});
}

async function stop(child: ChildProcess): Promise<void> {
	if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
	const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
	process.kill(child.pid, 'SIGTERM');
	const timer = setTimeout(() => {
		if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
	}, 5_000);
	await exited;
	clearTimeout(timer);
}
