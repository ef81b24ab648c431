/**
 * Section 5: cross-process cancel latency. A child process (bench/cancel-child.ts) runs runs that
 * wait on their signal; this process cancels them one at a time with `cancelTask`. Two times per
 * cancel: one way, from just before the call to the moment the signal aborted in the child (both
 * read from CLOCK_MONOTONIC, which on Linux every process shares), and to the arrival of the
 * child's IPC report of it (one IPC hop more). Next to it, measured the same way and interleaved:
 * the raw pub/sub delivery (PUBLISH here → the child's subscriber), and the bare IPC round trip.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { Redis } from 'ioredis';

import { BackgroundTaskManager } from '../src/index.js';
import { RedisCancellationBus, RedisRunRegistry } from '../src/redis/index.js';
import { now, quantile } from './stats.js';

export interface LatencyRow {
	readonly key: 'cancel-one-way' | 'pubsub-one-way' | 'cancel' | 'pubsub' | 'ipc';
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
	| { readonly type: 'aborted'; readonly runId: string; readonly at: number }
	| { readonly type: 'pong'; readonly id: number; readonly at: number }
	| { readonly type: 'ipc-pong'; readonly id: number };

const WARM_UP = 50;
const PREFIX = 'bench-cancel';

export async function measureCancel(port: number, samples: number, log: (line: string) => void): Promise<CancelResult> {
	const count = samples + WARM_UP;
	const child = fork(fileURLToPath(new URL('./cancel-child.ts', import.meta.url)), [String(port), String(count), PREFIX], {
		execArgv: process.execArgv,
		stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
	});
	// Resolved with the child's `at` (its clock reading when the event happened), 0 for an IPC pong.
	const waiting = new Map<string, (at: number) => void>();
	const arrived = (key: string, at = 0): void => {
		const resolve = waiting.get(key);
		waiting.delete(key);
		resolve?.(at);
	};
	const ready = new Promise<string[]>((resolve, reject) => {
		child.once('exit', (code) => reject(new Error(`cancel child exited with ${code}`)));
		child.on('message', (message: ChildMessage) => {
			switch (message.type) {
				case 'ready':
					resolve(message.runIds);
					break;
				case 'aborted':
					arrived(`aborted:${message.runId}`, message.at);
					break;
				case 'pong':
					arrived(`pong:${message.id}`, message.at);
					break;
				case 'ipc-pong':
					arrived(`ipc:${message.id}`);
					break;
			}
		});
	});
	const expect = (key: string): Promise<number> =>
		new Promise((resolve, reject) => {
			const timer = setTimeout(() => reject(new Error(`no ${key} within 5 s`)), 5_000);
			waiting.set(key, (at) => {
				clearTimeout(timer);
				resolve(at);
			});
		});
	// One way = the child's reading minus ours. It can only make sense if both read one clock:
	// never negative, never longer than the round trip that brought it back.
	const oneWay = (at: number, start: number, roundTrip: number): number => {
		const elapsed = at - start;
		if (elapsed < 0 || elapsed > roundTrip) throw new Error(`one-way time ${elapsed} ns outside 0..${roundTrip} ns: the child does not share this process's monotonic clock`);
		return elapsed;
	};

	const client = new Redis({ host: '127.0.0.1', port });
	const bus = new RedisCancellationBus({ client, prefix: PREFIX });
	const manager = new BackgroundTaskManager(new RedisRunRegistry({ client, prefix: PREFIX }), { bus, instanceId: `parent-${process.pid}` });
	try {
		const runIds = await ready;
		log(`  child ready: ${runIds.length} runs waiting on their signal`);
		const times: Record<LatencyRow['key'], number[]> = { 'cancel-one-way': [], 'pubsub-one-way': [], cancel: [], pubsub: [], ipc: [] };
		// Each measure gives its round trip, and its one-way time when the child reports one.
		const measures: Record<'cancel' | 'pubsub' | 'ipc', (index: number) => Promise<{ roundTrip: number; oneWay?: number }>> = {
			cancel: async (index) => {
				const runId = runIds[index]!;
				const abort = expect(`aborted:${runId}`);
				const start = now();
				const cancelled = manager.cancelTask(runId, 'bench');
				const at = await abort;
				const roundTrip = now() - start;
				if (!(await cancelled)) throw new Error(`cancelTask(${runId}) returned false`);
				return { roundTrip, oneWay: oneWay(at, start, roundTrip) };
			},
			pubsub: async (index) => {
				const pong = expect(`pong:${index}`);
				const start = now();
				void client.publish('bench:ping', String(index));
				const at = await pong;
				const roundTrip = now() - start;
				return { roundTrip, oneWay: oneWay(at, start, roundTrip) };
			},
			ipc: async (index) => {
				const pong = expect(`ipc:${index}`);
				const start = now();
				child.send({ type: 'ping', id: index });
				await pong;
				return { roundTrip: now() - start };
			},
		};
		const kinds = Object.keys(measures) as Array<keyof typeof measures>;
		for (let index = 0; index < count; index++) {
			// Interleaved, in a rotating order, so that noise hits the three alike.
			for (let turn = 0; turn < kinds.length; turn++) {
				const kind = kinds[(index + turn) % kinds.length]!;
				const { roundTrip, oneWay: elapsed } = await measures[kind](index);
				if (index < WARM_UP) continue;
				times[kind].push(roundTrip / 1000);
				if (elapsed !== undefined) times[`${kind as 'cancel' | 'pubsub'}-one-way`].push(elapsed / 1000);
			}
		}
		const labels: Record<LatencyRow['key'], string> = {
			'cancel-one-way': '`cancelTask` here → signal aborted in the child (one way)',
			'pubsub-one-way': "raw pub/sub: PUBLISH here → message in the child's subscriber (one way)",
			cancel: '`cancelTask` here → signal aborted in the child → IPC back',
			pubsub: 'raw pub/sub: PUBLISH here → child subscriber → IPC back',
			ipc: 'IPC ping → IPC back (the hop included in the two rows above)',
		};
		const keys = Object.keys(times) as Array<LatencyRow['key']>;
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
