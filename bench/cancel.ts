/**
 * Section 5: cross-process cancel latency. A child process (bench/cancel-child.ts) runs runs that
 * wait on their signal; this process cancels them one at a time with `cancelTask` and takes the
 * time from just before the call to the child's IPC report that the signal aborted. Next to it,
 * measured the same way and interleaved: the raw pub/sub round trip (PUBLISH here → the child's
 * subscriber → IPC back) and the bare IPC round trip. So every figure includes one IPC hop.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { Redis } from 'ioredis';

import { BackgroundTaskManager } from '../src/index.js';
import { RedisCancellationBus, RedisRunRegistry } from '../src/redis/index.js';
import { now, quantile } from './stats.js';

export interface LatencyRow {
	readonly key: 'cancel' | 'pubsub' | 'ipc';
	readonly label: string;
	readonly samples: number;
	readonly p50Us: number;
	readonly p90Us: number;
	readonly p99Us: number;
	readonly maxUs: number;
}

export interface CancelResult {
	readonly samples: number;
	readonly rows: LatencyRow[];
}

type ChildMessage =
	| { readonly type: 'ready'; readonly runIds: string[] }
	| { readonly type: 'aborted'; readonly runId: string }
	| { readonly type: 'pong'; readonly id: number }
	| { readonly type: 'ipc-pong'; readonly id: number };

const WARM_UP = 50;
const PREFIX = 'bench-cancel';

export async function measureCancel(port: number, samples: number, log: (line: string) => void): Promise<CancelResult> {
	const count = samples + WARM_UP;
	const child = fork(fileURLToPath(new URL('./cancel-child.ts', import.meta.url)), [String(port), String(count), PREFIX], {
		execArgv: process.execArgv,
		stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
	});
	const waiting = new Map<string, () => void>();
	const arrived = (key: string): void => {
		const resolve = waiting.get(key);
		waiting.delete(key);
		resolve?.();
	};
	const ready = new Promise<string[]>((resolve, reject) => {
		child.once('exit', (code) => reject(new Error(`cancel child exited with ${code}`)));
		child.on('message', (message: ChildMessage) => {
			switch (message.type) {
				case 'ready':
					resolve(message.runIds);
					break;
				case 'aborted':
					arrived(`aborted:${message.runId}`);
					break;
				case 'pong':
					arrived(`pong:${message.id}`);
					break;
				case 'ipc-pong':
					arrived(`ipc:${message.id}`);
					break;
			}
		});
	});
	const expect = (key: string): Promise<void> =>
		new Promise((resolve, reject) => {
			const timer = setTimeout(() => reject(new Error(`no ${key} within 5 s`)), 5_000);
			waiting.set(key, () => {
				clearTimeout(timer);
				resolve();
			});
		});

	const client = new Redis({ host: '127.0.0.1', port });
	const bus = new RedisCancellationBus({ client, prefix: PREFIX });
	const manager = new BackgroundTaskManager(new RedisRunRegistry({ client, prefix: PREFIX }), { bus, instanceId: `parent-${process.pid}` });
	try {
		const runIds = await ready;
		log(`  child ready: ${runIds.length} runs waiting on their signal`);
		const times = { cancel: [] as number[], pubsub: [] as number[], ipc: [] as number[] };
		const measures: Record<keyof typeof times, (index: number) => Promise<number>> = {
			cancel: async (index) => {
				const runId = runIds[index]!;
				const abort = expect(`aborted:${runId}`);
				const start = now();
				const cancelled = manager.cancelTask(runId, 'bench');
				await abort;
				const elapsed = now() - start;
				if (!(await cancelled)) throw new Error(`cancelTask(${runId}) returned false`);
				return elapsed;
			},
			pubsub: async (index) => {
				const pong = expect(`pong:${index}`);
				const start = now();
				void client.publish('bench:ping', String(index));
				await pong;
				return now() - start;
			},
			ipc: async (index) => {
				const pong = expect(`ipc:${index}`);
				const start = now();
				child.send({ type: 'ping', id: index });
				await pong;
				return now() - start;
			},
		};
		const keys = Object.keys(measures) as Array<keyof typeof times>;
		for (let index = 0; index < count; index++) {
			// Interleaved, in a rotating order, so that noise hits the three alike.
			for (let turn = 0; turn < keys.length; turn++) {
				const key = keys[(index + turn) % keys.length]!;
				const elapsed = await measures[key](index);
				if (index >= WARM_UP) times[key].push(elapsed / 1000);
			}
		}
		const labels: Record<keyof typeof times, string> = {
			cancel: '`cancelTask` here → signal aborted in the child → IPC back',
			pubsub: 'raw pub/sub: PUBLISH here → child subscriber → IPC back',
			ipc: 'IPC ping → IPC back (the hop included in both rows above)',
		};
		const rows = keys.map((key) => {
			const values = times[key];
			return { key, label: labels[key], samples: values.length, p50Us: quantile(values, 0.5), p90Us: quantile(values, 0.9), p99Us: quantile(values, 0.99), maxUs: Math.max(...values) };
		});
		for (const row of rows) log(`  ${row.key}: p50 ${row.p50Us.toFixed(0)} µs, p99 ${row.p99Us.toFixed(0)} µs`);
		return { samples, rows };
	} finally {
		await stopChild(child);
		await manager.shutdown({ graceMs: 0, abortGraceMs: 0 });
		await bus.close();
		await client.quit();
	}
}

async function stopChild(child: ChildProcess): Promise<void> {
	if (child.exitCode !== null || child.signalCode !== null) return;
	const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
	if (child.connected) child.send({ type: 'stop' });
	const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
	await exited;
	clearTimeout(timer);
}
