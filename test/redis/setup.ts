/**
 * Global setup of the `redis` project: starts a throwaway redis-server on a free loopback port,
 * with no persistence, provides its URL to the tests as `redisUrl`, and stops it by pid at the end.
 *
 * Without `redis-server` on PATH: under CI (`CI=true`) that is a failure; elsewhere a notice is
 * printed and `redisUrl` is null, which makes the Redis test files skip (visibly).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

import type { TestProject } from 'vitest/node';

declare module 'vitest' {
	export interface ProvidedContext {
		/** `redis://127.0.0.1:<port>` of the test server, or null when redis-server is not installed. */
		redisUrl: string | null;
	}
}

const START_TIMEOUT_MS = 10_000;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
	const binary = await findOnPath('redis-server');
	if (binary === undefined) {
		if (process.env.CI === 'true') throw new Error('redis-server is not on PATH: CI must install it (.ci/run: ensure_apt_package redis-server)');
		const line = '!'.repeat(100);
		console.warn(`\n${line}\n!! redis-server is not on PATH: the Redis tests are SKIPPED. Install it (e.g. apt-get install redis-server) to run them.\n${line}\n`);
		project.provide('redisUrl', null);
		return async () => {};
	}

	const dir = await mkdtemp(join(tmpdir(), 'runledger-redis-'));
	let server: { child: ChildProcess; port: number } | undefined;
	let lastError: unknown;
	// A port found free can be taken before redis-server binds it: try a few.
	for (let attempt = 0; attempt < 3 && server === undefined; attempt++) {
		const port = await freePort();
		try {
			server = { child: await start(binary, port, dir), port };
		} catch (error) {
			lastError = error;
		}
	}
	if (server === undefined) {
		await rm(dir, { recursive: true, force: true });
		throw lastError;
	}
	const { child, port } = server;
	const stopOnExit = (): void => {
		child.kill('SIGKILL');
	};
	process.once('exit', stopOnExit);
	project.provide('redisUrl', `redis://127.0.0.1:${port}`);

	return async () => {
		process.off('exit', stopOnExit);
		await stop(child);
		await rm(dir, { recursive: true, force: true });
	};
}

async function findOnPath(name: string): Promise<string | undefined> {
	for (const dir of (process.env.PATH ?? '').split(delimiter)) {
		if (dir === '') continue;
		const candidate = join(dir, name);
		try {
			await access(candidate, constants.X_OK);
			return candidate;
		} catch {
			// Not here.
		}
	}
	return undefined;
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

// Spawns redis-server and resolves once it answers PING; rejects (and kills it) otherwise.
async function start(binary: string, port: number, dir: string): Promise<ChildProcess> {
	const child = spawn(
		binary,
		['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'yes', '--maxmemory-policy', 'noeviction'],
		{ stdio: ['ignore', 'pipe', 'pipe'] },
	);
	let output = '';
	child.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4_000)));
	child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4_000)));
	let exited = false;
	child.once('exit', () => (exited = true));

	const deadline = Date.now() + START_TIMEOUT_MS;
	while (Date.now() < deadline) {
		if (exited) throw new Error(`redis-server exited at start on port ${port}:\n${output}`);
		if (await pings(port)) return child;
		await new Promise((resolve) => setTimeout(resolve, 50));
	}
	await stop(child);
	throw new Error(`redis-server did not answer PING on port ${port} within ${START_TIMEOUT_MS} ms:\n${output}`);
}

// Whether a Redis on 127.0.0.1:port answers PING with PONG.
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

// SIGTERM by pid, SIGKILL if it is still there after 5 s.
async function stop(child: ChildProcess): Promise<void> {
	if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
	const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
	process.kill(child.pid, 'SIGTERM');
	const timer = setTimeout(() => child.pid !== undefined && child.exitCode === null && process.kill(child.pid, 'SIGKILL'), 5_000);
	await exited;
	clearTimeout(timer);
}
