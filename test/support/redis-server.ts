/**
 * A redis-server for tests (and the benchmark), on a loopback port chosen once and kept across
 * restarts: started, stopped (SIGTERM, or SIGKILL for a crash), frozen and started again by pid.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

/** A loopback port that was free a moment ago: bind 127.0.0.1:0, read the port, close. */
export function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const probe = createServer();
		probe.once('error', reject);
		probe.listen(0, '127.0.0.1', () => {
			const address = probe.address();
			probe.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('No port'))));
		});
	});
}

export interface RedisServerOptions {
	/** AOF persistence (`--appendonly yes` in a temporary `--dir`), so that data survives a restart. @default false */
	readonly aof?: boolean;
}

/**
 * A redis-server of one test, on a loopback port chosen once and kept across restarts. Started,
 * stopped (SIGTERM, or SIGKILL for a crash) and started again by pid. `destroy()` kills it and
 * removes its directory; it is also killed if the worker exits.
 */
export class RedisServer {
	readonly port: number;
	readonly url: string;
	readonly aof: boolean;
	readonly #dir: string;
	#child: ChildProcess | undefined;
	readonly #killOnExit = (): void => {
		if (this.#child?.pid !== undefined && this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL');
	};

	private constructor(port: number, dir: string, aof: boolean) {
		this.port = port;
		this.url = `redis://127.0.0.1:${port}`;
		this.aof = aof;
		this.#dir = dir;
		process.on('exit', this.#killOnExit);
	}

	/** A server on a free port, not started yet (for a test where Redis is unreachable at first). */
	static async create(options: RedisServerOptions = {}): Promise<RedisServer> {
		const dir = await mkdtemp(join(tmpdir(), 'runledger-redis-'));
		return new RedisServer(await freePort(), dir, options.aof ?? false);
	}

	/** A started server. A port found free can be taken before redis-server binds it: a few ports are tried. */
	static async started(options: RedisServerOptions = {}): Promise<RedisServer> {
		let lastError: unknown;
		for (let attempt = 0; attempt < 3; attempt++) {
			const server = await RedisServer.create(options);
			try {
				await server.start();
				return server;
			} catch (error) {
				lastError = error;
				await server.destroy();
			}
		}
		throw lastError;
	}

	get running(): boolean {
		return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
	}

	/** Spawns redis-server on `port` (with the data of `--dir` when AOF is on) and resolves once it answers PING. */
	async start(): Promise<void> {
		if (this.running) throw new Error(`redis-server on port ${this.port} is already running`);
		const child = spawn(
			'redis-server',
			[
				'--port', String(this.port),
				'--bind', '127.0.0.1',
				'--save', '',
				'--appendonly', this.aof ? 'yes' : 'no',
				'--dir', this.#dir,
				'--protected-mode', 'yes',
				'--maxmemory-policy', 'noeviction',
			],
			{ stdio: ['ignore', 'pipe', 'pipe'] },
		);
		this.#child = child;
		let output = '';
		const collect = (chunk: Buffer): void => {
			output = (output + chunk.toString()).slice(-4_000);
		};
		child.stdout?.on('data', collect);
		child.stderr?.on('data', collect);
		let exited = false;
		child.once('exit', () => (exited = true));
		child.once('error', (error) => {
			exited = true;
			output += String(error);
		});

		const deadline = Date.now() + START_TIMEOUT_MS;
		while (Date.now() < deadline) {
			if (exited) throw new Error(`redis-server exited at start on port ${this.port}:\n${output}`);
			if (await pings(this.port)) return;
			await new Promise((resolve) => setTimeout(resolve, 20));
		}
		await this.stop('SIGKILL');
		throw new Error(`redis-server did not answer PING on port ${this.port} within ${START_TIMEOUT_MS} ms:\n${output}`);
	}

	/** Stops it by pid — SIGTERM (a clean shutdown: AOF flushed) or SIGKILL (a crash) — and resolves once it exited. */
	async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
		const child = this.#child;
		if (child === undefined || child.pid === undefined || !this.running) return;
		const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
		process.kill(child.pid, signal);
		const timer = setTimeout(() => {
			if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
		}, STOP_TIMEOUT_MS);
		await exited;
		clearTimeout(timer);
	}

	/** Freezes it (SIGSTOP): connections stay open and commands hang unanswered, as with a stalled server or a black-holed network. */
	pause(): void {
		if (this.#child?.pid === undefined || !this.running) throw new Error(`redis-server on port ${this.port} is not running`);
		process.kill(this.#child.pid, 'SIGSTOP');
	}

	/** Thaws it (SIGCONT). */
	resume(): void {
		if (this.#child?.pid !== undefined && this.running) process.kill(this.#child.pid, 'SIGCONT');
	}

	/** Kills it if it runs and removes its directory. */
	async destroy(): Promise<void> {
		await this.stop('SIGKILL');
		process.off('exit', this.#killOnExit);
		await rm(this.#dir, { recursive: true, force: true });
	}
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
