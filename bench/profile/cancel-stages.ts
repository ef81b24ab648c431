/**
 * Where a cross-process cancel's time goes, stage by stage, next to a raw PUBLISH. One process
 * (this one) cancels runs that wait on their signal in a forked child, one at a time, interleaved
 * with raw PUBLISHes to a plain subscriber in the child. Every stage is read from
 * `process.hrtime` (CLOCK_MONOTONIC, one clock for every process on Linux):
 *   call → client     from `cancelTask` (or `publish`) to the ioredis call (runledger's own work)
 *   client → written  to the command's bytes leaving on the socket (ioredis)
 *   written → bytes   to the first bytes of the message on the child's subscriber socket (Redis)
 *   bytes → message   to the subscriber connection's `message` event (ioredis, in the child)
 *   message → abort() to the manager's call of AbortController#abort (runledger, in the child)
 *   abort() → done    to the task's abort listener (Node's abort and event dispatch)
 * (the last two are 0 for the raw row, which ends at the `message` event)
 * and the time Redis spent in the command itself: per script (SLOWLOG, threshold 0; the child's
 * writes of the cancelled runs included) and per command (`INFO commandstats`, usec per call).
 *
 *   node --import tsx --import ./scripts/lua-hooks.mjs bench/profile/cancel-stages.ts [samples]
 */
import { fork } from 'node:child_process';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

import { Redis } from 'ioredis';

import { BackgroundTaskManager } from '../../src/index.js';
import { RedisCancellationBus, RedisRunRegistry } from '../../src/redis/index.js';
import { startRedisServer } from '../redis-server.js';
import { quantile } from '../stats.js';

const PREFIX = 'stages';
const hr = (): number => Number(process.hrtime.bigint());

/** Calls `onData` with the time of each chunk read on `client`'s socket, once it is connected. */
async function watchReads(client: Redis, onData: () => void): Promise<void> {
	if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve));
	// Before ioredis' own listener, which handles the message (and the abort) synchronously.
	(client as unknown as { stream: Socket }).stream.prependListener('data', onData);
}

/** Calls `onWrite` with the time of each write to `client`'s socket. */
async function watchWrites(client: Redis, onWrite: () => void): Promise<void> {
	if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve));
	const stream = (client as unknown as { stream: Socket & { write: (...args: unknown[]) => boolean } }).stream;
	const write = stream.write.bind(stream);
	stream.write = (...args: unknown[]) => {
		onWrite();
		return write(...args);
	};
}

if (process.argv[2] === 'child') {
	const [port, count] = [Number(process.argv[3]), Number(process.argv[4])];
	const send = (message: unknown): void => void process.send!(message);
	let lastBusRead = 0;
	let lastRawRead = 0;
	let lastBusMessage = 0;
	// The bus's own subscriber connection is a duplicate of the client: catch it to time its reads.
	const duplicate = Redis.prototype.duplicate;
	Redis.prototype.duplicate = function (this: Redis, ...args: Parameters<Redis['duplicate']>) {
		const connection = duplicate.apply(this, args);
		void watchReads(connection, () => (lastBusRead = hr()));
		connection.prependListener('message', () => (lastBusMessage = hr()));
		return connection;
	};
	// When the manager calls AbortController#abort: splits the last stage into runledger's part and Node's.
	let lastAbortCall = 0;
	const abort = AbortController.prototype.abort;
	AbortController.prototype.abort = function (this: AbortController, reason?: unknown): void {
		lastAbortCall = hr();
		abort.call(this, reason);
	};
	const client = new Redis({ host: '127.0.0.1', port });
	const bus = new RedisCancellationBus({ client, prefix: PREFIX });
	const manager = new BackgroundTaskManager(new RedisRunRegistry({ client, prefix: PREFIX }), { bus, instanceId: 'child' });
	const raw = new Redis({ host: '127.0.0.1', port });
	await watchReads(raw, () => (lastRawRead = hr()));
	raw.on('message', () => {
		const at = hr();
		send({ type: 'pong', bytes: lastRawRead, message: at, abortCall: at, done: at });
	});
	await raw.subscribe('stages:ping');
	const runIds: string[] = [];
	for (let index = 0; index < count; index++) {
		runIds.push(
			manager.startTask({ moduleId: 'stages' }, ({ signal }) => new Promise((_resolve, reject) => {
				signal.addEventListener('abort', () => {
					send({ type: 'aborted', bytes: lastBusRead, message: lastBusMessage, abortCall: lastAbortCall, done: hr() });
					reject(signal.reason);
				}, { once: true });
			})),
		);
	}
	await manager.flush();
	await bus.subscribe(() => {});
	send({ type: 'ready', runIds });
	process.on('message', () => {
		void manager.shutdown({ graceMs: 0 }).then(async () => {
			await bus.close();
			raw.disconnect();
			client.disconnect();
			process.disconnect();
		});
	});
} else {
	const samples = Number(process.argv[2] ?? 1000);
	const warmUp = 50;
	const server = await startRedisServer();
	const child = fork(fileURLToPath(import.meta.url), ['child', String(server.port), String(samples + warmUp)], { execArgv: process.execArgv });
	let next: ((message: { bytes: number; message: number; abortCall: number; done: number }) => void) | undefined;
	const runIds = await new Promise<string[]>((resolve) => {
		child.on('message', (message: { type: string; runIds?: string[]; bytes: number; message: number; abortCall: number; done: number }) => {
			if (message.type === 'ready') resolve(message.runIds!);
			else next?.(message);
		});
	});
	const reply = (): Promise<{ bytes: number; message: number; abortCall: number; done: number }> => new Promise((resolve) => (next = resolve));

	const client = new Redis({ host: '127.0.0.1', port: server.port });
	const admin = new Redis({ host: '127.0.0.1', port: server.port });
	let lastWrite = 0;
	let lastCall = 0;
	await watchWrites(client, () => (lastWrite = hr()));
	for (const name of ['call', 'publish'] as const) {
		const original = client[name].bind(client) as (...args: unknown[]) => unknown;
		(client as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
			lastCall = hr();
			return original(...args);
		};
	}
	const bus = new RedisCancellationBus({ client, prefix: PREFIX });
	const manager = new BackgroundTaskManager(new RedisRunRegistry({ client, prefix: PREFIX }), { bus, instanceId: 'parent' });
	type Stages = { lib: number[]; call: number[]; wire: number[]; parse: number[]; child: number[]; abort: number[]; total: number[] };
	const stages = (): Stages => ({ lib: [], call: [], wire: [], parse: [], child: [], abort: [], total: [] });
	const cancel = stages();
	const pubsub = stages();
	const record = (into: Stages, start: number, called: number, written: number, got: { bytes: number; message: number; abortCall: number; done: number }): void => {
		into.lib.push((called - start) / 1000);
		into.call.push((written - called) / 1000);
		into.wire.push((got.bytes - written) / 1000);
		into.parse.push((got.message - got.bytes) / 1000);
		into.child.push((got.abortCall - got.message) / 1000);
		into.abort.push((got.done - got.abortCall) / 1000);
		into.total.push((got.done - start) / 1000);
	};
	await admin.config('RESETSTAT');
	await admin.config('SET', 'slowlog-log-slower-than', '0');
	await admin.config('SET', 'slowlog-max-len', '100000');
	await admin.slowlog('RESET');
	for (let index = 0; index < samples + warmUp; index++) {
		for (const kind of index % 2 === 0 ? ['cancel', 'pubsub'] : ['pubsub', 'cancel']) {
			const got = reply();
			const start = hr();
			if (kind === 'cancel') void manager.cancelTask(runIds[index]!);
			else void client.publish('stages:ping', String(index));
			const [called, written] = [lastCall, lastWrite];
			const result = await got;
			if (index >= warmUp) record(kind === 'cancel' ? cancel : pubsub, start, called, written, result);
		}
	}
	const info = await admin.info('commandstats');
	const log = (await admin.slowlog('GET', 100000)) as Array<[number, number, number, string[]]>;
	const byScript = new Map<string, number[]>();
	for (const [, , micros, args] of log) {
		if (!/^(evalsha|fcall)$/i.test(args[0]!)) continue;
		const key = `${args[0]} ${args[0]!.toLowerCase() === 'fcall' ? args[1] : args[1]!.slice(0, 12)}`;
		byScript.set(key, [...(byScript.get(key) ?? []), micros]);
	}
	for (const [key, values] of byScript) console.log(`${key}: ${values.length} calls, p50 ${quantile(values, 0.5)} µs, p90 ${quantile(values, 0.9)} µs`);
	const usec = (command: string): string => /usec_per_call=([\d.]+)/.exec(info.split('\n').find((line) => line.startsWith(`cmdstat_${command}:`)) ?? '')?.[1] ?? '?';
	const row = (label: string, values: number[]): string => `${label.padEnd(18)} p50 ${quantile(values, 0.5).toFixed(0).padStart(5)} µs   p90 ${quantile(values, 0.9).toFixed(0).padStart(5)} µs`;
	for (const [label, s] of [['cancel', cancel], ['raw pub/sub', pubsub]] as const) {
		console.log(`${label}:`);
		console.log(row('  call → client', s.lib));
		console.log(row('  client → written', s.call));
		console.log(row('  written → bytes', s.wire));
		console.log(row('  bytes → message', s.parse));
		console.log(row('  message → abort()', s.child));
		console.log(row('  abort() → done', s.abort));
		console.log(row('  total', s.total));
	}
	console.log(`in Redis: EVALSHA ${usec('evalsha')} µs/call, FCALL ${usec('fcall')} µs/call, PUBLISH ${usec('publish')} µs/call`);
	child.send('stop');
	await new Promise((resolve) => child.once('exit', resolve));
	await manager.shutdown({ graceMs: 0 });
	await bus.close();
	client.disconnect();
	admin.disconnect();
	await server.stop();
}
