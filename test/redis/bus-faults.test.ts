/**
 * RedisCancellationBus under faults and attack, with figures:
 *
 * - a subscriber connection black-holed by a TCP proxy (test/redis/tcp-proxy.ts) while 1,000
 *   cancels are issued: the registry (reconcile) honours them all, the bus's ping finds the dead
 *   connection, drops it, and resubscribes once the network is back;
 * - a storm of 100,000 cancels for unknown ids with 100 real ones, and the RSS it costs;
 * - fast-check fuzzed messages: nothing crashes, no prototype is polluted, the next cancel works;
 * - message signing: unsigned, forged, stale and replayed messages rejected, valid ones accepted;
 * - two prefixes on one Redis with identical run ids: nothing crosses, every key and channel is
 *   under its prefix.
 *
 * Tests that break connections or count every key use a redis-server of their own
 * (test/redis/fault-support.ts); the others use the shared one. Every test fails on an unhandled
 * rejection or uncaught exception (test/support/process-traps.ts).
 */
import { createHmac, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';

import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import type { CancelCommand } from '../../src/bus.js';
import { BackgroundTaskManager, type BackgroundTaskManagerOptions, type RunledgerError } from '../../src/index.js';
import { RedisCancellationBus, type RedisCancellationBusOptions, RedisRunRegistry } from '../../src/redis/index.js';
import { failOnUnhandledErrorsAfterEach } from '../support/process-traps.js';
import { Cleanup, FAULT_TOLERANT_CLIENT_OPTIONS, RedisServer, faultTolerantClient, trackTimers } from './fault-support.js';
import { connect, eventually, redisUrl, scanAll, uniquePrefix } from './support.js';
import { type TcpProxy, startTcpProxy } from './tcp-proxy.js';

failOnUnhandledErrorsAfterEach();

let cleanup: Cleanup;

// What one bus subscription received, with arrival times.
interface Inbox {
	readonly commands: CancelCommand[];
	readonly errors: RunledgerError[];
	readonly errorAt: number[];
	readonly handler: (command: CancelCommand) => void;
	readonly onError: (error: Error) => void;
}

function inbox(): Inbox {
	const commands: CancelCommand[] = [];
	const errors: RunledgerError[] = [];
	const errorAt: number[] = [];
	return {
		commands,
		errors,
		errorAt,
		handler: (command) => void commands.push(command),
		onError: (error) => {
			errors.push(error as RunledgerError);
			errorAt.push(performance.now());
		},
	};
}

const codes = (errors: readonly RunledgerError[]): Record<string, number> => {
	const counts: Record<string, number> = {};
	for (const error of errors) counts[error.code] = (counts[error.code] ?? 0) + 1;
	return counts;
};

/** Tasks that wait for their signal and record when it aborted. */
function abortRecorder(): { aborted: Map<string, number>; task: (context: { runId: string; signal: AbortSignal }) => Promise<void> } {
	const aborted = new Map<string, number>();
	return {
		aborted,
		task: ({ runId, signal }) =>
			new Promise<void>((resolve) => {
				const done = (): void => {
					aborted.set(runId, performance.now());
					resolve();
				};
				if (signal.aborted) done();
				else signal.addEventListener('abort', done, { once: true });
			}),
	};
}

function bus(options: RedisCancellationBusOptions): RedisCancellationBus {
	const created = new RedisCancellationBus(options);
	cleanup.defer(() => created.close());
	return created;
}

function manager(registryClient: Redis, prefix: string, options: BackgroundTaskManagerOptions): { manager: BackgroundTaskManager; errors: RunledgerError[] } {
	const created = new BackgroundTaskManager(new RedisRunRegistry({ client: registryClient, prefix }), options);
	const errors: RunledgerError[] = [];
	created.on('error', (error) => errors.push(error));
	cleanup.defer(() => created.shutdown({ graceMs: 0, abortGraceMs: 200 }));
	return { manager: created, errors };
}

async function ownServer(): Promise<{ server: RedisServer; clientErrors: unknown[]; client: () => Redis }> {
	const server = await RedisServer.started();
	cleanup.defer(() => server.destroy());
	const clientErrors: unknown[] = [];
	return {
		server,
		clientErrors,
		client: () => {
			const client = faultTolerantClient(server.url, clientErrors);
			cleanup.defer(() => client.disconnect());
			return client;
		},
	};
}

beforeEach(() => {
	cleanup = new Cleanup();
});
afterEach(async () => {
	await cleanup.run();
});

describe.skipIf(redisUrl === null)('RedisCancellationBus under faults and attack', () => {
	it('refuses invalid ping and signing options with a ValidationError', () => {
		const client = new Redis({ lazyConnect: true });
		cleanup.defer(() => client.disconnect());
		for (const [field, value] of [
			['pingIntervalMs', -1],
			['pingIntervalMs', 1.5],
			['pingTimeoutMs', 0],
			['pingTimeoutMs', Number.NaN],
			['maxMessageAgeMs', 0],
			['signingKey', ''],
			['signingKey', 42],
		] as const) {
			expect(() => new RedisCancellationBus({ client, [field]: value } as unknown as RedisCancellationBusOptions)).toThrow(
				expect.objectContaining({ name: 'ValidationError', field }),
			);
		}
		expect(() => new RedisCancellationBus({ client, pingIntervalMs: 0, signingKey: Buffer.alloc(32, 1), maxMessageAgeMs: 1 })).not.toThrow();
	});

	describe('a black-holed subscriber connection', () => {
		const RUNS = 1_000;
		const RECONCILE_MS = 500;
		const PING_INTERVAL_MS = 200;
		const PING_TIMEOUT_MS = 300;
		// Slack for 1,000 aborts, their registry reads and a loaded CI machine.
		const SLACK_MS = 1_500;

		it(`honours ${RUNS} cancels within reconcileIntervalMs ${RECONCILE_MS} ms + ${SLACK_MS} ms, detects the dead connection within ping ${PING_INTERVAL_MS} + ${PING_TIMEOUT_MS} ms (+ slack), and resubscribes once the network is back`, async () => {
			const { server, client } = await ownServer();
			const proxy: TcpProxy = await startTcpProxy(server.port);
			cleanup.defer(() => proxy.close());
			const proxyErrors: unknown[] = [];
			const viaProxy = new Redis({ host: '127.0.0.1', port: proxy.port, ...FAULT_TOLERANT_CLIENT_OPTIONS });
			viaProxy.on('error', (error: unknown) => proxyErrors.push(error));
			cleanup.defer(() => viaProxy.disconnect());
			const direct = client();
			const prefix = uniquePrefix();
			const pingOptions = { pingIntervalMs: PING_INTERVAL_MS, pingTimeoutMs: PING_TIMEOUT_MS };

			// A: runs the 1,000 tasks; bus behind the proxy, registry direct, reconcile every 500 ms.
			const busA = bus({ client: viaProxy, prefix, ...pingOptions });
			const a = manager(direct, prefix, { instanceId: 'a', bus: busA, reconcileIntervalMs: RECONCILE_MS });
			// B: no reconcile at all; whatever aborts its run, the bus delivered it.
			const busB = bus({ client: viaProxy, prefix, ...pingOptions });
			const b = manager(direct, prefix, { instanceId: 'b', bus: busB, reconcileIntervalMs: 0 });
			// C: issues the cancels, directly on the real server (CANCELLED written, then published).
			const busC = bus({ client: direct, prefix });
			const c = manager(direct, prefix, { instanceId: 'c', bus: busC, reconcileIntervalMs: 0 });
			// Watchers on A's and B's subscriber connections: what the buses report and deliver.
			const watchA = inbox();
			const watchB = inbox();
			await busA.subscribe(watchA.handler, watchA.onError);
			await busB.subscribe(watchB.handler, watchB.onError);

			const runsA = abortRecorder();
			const ids = Array.from({ length: RUNS }, (_, index) => a.manager.startTask({ runId: `a-${index}`, moduleId: 'bulk' }, runsA.task));
			const runsB = abortRecorder();
			const idB = b.manager.startTask({ runId: 'b-0', moduleId: 'bulk' }, runsB.task);
			await a.manager.flush();
			await b.manager.flush();
			const observer = new RedisRunRegistry({ client: direct, prefix });
			expect((await observer.getRuns([...ids, idB])).every((run) => run?.status === 'running')).toBe(true);

			// The black hole: nothing reaches A's and B's subscribers any more, and nothing tells them.
			proxy.blackHole();
			const blackHoledAt = performance.now();
			// Each cancel: CANCELLED written (compare-and-set), then published on the real server.
			const cancelledAt = new Map<string, number>();
			const cancels = await Promise.all(
				ids.map(async (runId) => {
					const cancelled = await c.manager.cancelTask(runId, 'black hole');
					cancelledAt.set(runId, performance.now());
					return cancelled;
				}),
			);
			const issuedMs = Math.round(performance.now() - blackHoledAt);
			expect(cancels.every((cancelled) => cancelled)).toBe(true);

			await eventually(`${RUNS} aborts`, () => runsA.aborted.size === RUNS, RECONCILE_MS + SLACK_MS + 5_000);
			// Per run: from its cancel being written and published to its signal aborting.
			const latencies = ids.map((runId) => (runsA.aborted.get(runId) as number) - (cancelledAt.get(runId) as number)).sort((x, y) => x - y);
			const maxLatencyMs = Math.round(latencies.at(-1) as number);
			const medianLatencyMs = Math.round(latencies[Math.floor(latencies.length / 2)] as number);
			// None came over the bus: the registry (reconcile) honoured them all.
			expect(watchA.commands.filter((command) => command.runId.startsWith('a-'))).toHaveLength(0);
			expect(maxLatencyMs).toBeLessThanOrEqual(RECONCILE_MS + SLACK_MS);

			await eventually('the dead connection to be detected', () => watchA.errors.some((error) => error.code === 'ERR_BUS_DEAD_CONNECTION') && watchB.errors.some((error) => error.code === 'ERR_BUS_DEAD_CONNECTION'), 5_000);
			const detectedAt = watchA.errorAt[watchA.errors.findIndex((error) => error.code === 'ERR_BUS_DEAD_CONNECTION')] as number;
			const detectedMs = Math.round(detectedAt - blackHoledAt);
			expect(detectedMs).toBeLessThanOrEqual(PING_INTERVAL_MS + PING_TIMEOUT_MS + 1_000);
			expect(watchA.errors[0]?.message).toMatch(/did not answer a PING within 300 ms/u);
			// The manager heard of it too (its 'error' event), with the bus's code.
			expect(a.errors.some((error) => error.code === 'ERR_BUS_DEAD_CONNECTION')).toBe(true);
			expect(runsB.aborted.size).toBe(0);
			// The partition lasts: the replacement connections hang before ready and are dropped again.
			await eventually('a hung reconnect to be dropped', () => watchA.errors.some((error) => /not ready within/u.test(error.message)), 5_000);

			// The network is back: both subscribers reconnect and resubscribe by themselves.
			proxy.resume();
			const resumedAt = performance.now();
			let sentinel = 0;
			await eventually(
				'both subscribers to be resubscribed',
				async () => {
					await busC.publish({ type: 'cancel', runId: `sentinel-${++sentinel}` });
					await new Promise((resolve) => setTimeout(resolve, 25));
					return watchA.commands.some((command) => command.runId.startsWith('sentinel-')) && watchB.commands.some((command) => command.runId.startsWith('sentinel-'));
				},
				10_000,
			);
			const resubscribedMs = Math.round(performance.now() - resumedAt);

			// One cancel, published once, reaches B — which has no reconcile — over the bus.
			const cancelB = performance.now();
			expect(await c.manager.cancelTask(idB, 'after recovery')).toBe(true);
			await eventually('B to abort over the bus', () => runsB.aborted.has(idB), 2_000);
			const busLatencyMs = Math.round((runsB.aborted.get(idB) as number) - cancelB);
			expect(watchB.commands.some((command) => command.runId === idB)).toBe(true);
			expect(busLatencyMs).toBeLessThan(1_000);

			console.info(
				`[bus black hole] ${RUNS}/${RUNS} cancels (issued in ${issuedMs} ms) honoured through the registry: per run ${medianLatencyMs} ms median, ${maxLatencyMs} ms max from cancel to abort (reconcile ${RECONCILE_MS} ms); ` +
					`dead connection detected ${detectedMs} ms after the black hole (ping ${PING_INTERVAL_MS} + ${PING_TIMEOUT_MS} ms); ` +
					`resubscribed ${resubscribedMs} ms after the network came back; a cancel then took ${busLatencyMs} ms over the bus (reconcile off); ` +
					`bus reports: A ${JSON.stringify(codes(watchA.errors))}, B ${JSON.stringify(codes(watchB.errors))}; proxy accepted ${proxy.accepted} connections`,
			);
		});

		it('a healthy subscriber that answers its pings is never dropped (3 s of pings every 50 ms, 0 reports), and close() leaves no timer of the bus', async () => {
			const timers = trackTimers();
			cleanup.defer(() => timers.restore());
			const client = connect();
			cleanup.defer(() => client.quit());
			const watched = new RedisCancellationBus({ client, prefix: uniquePrefix(), pingIntervalMs: 50, pingTimeoutMs: 1_000 });
			const watch = inbox();
			await watched.subscribe(watch.handler, watch.onError);
			await new Promise((resolve) => setTimeout(resolve, 3_000));
			await watched.publish({ type: 'cancel', runId: 'still-here' });
			await eventually('the cancel', () => watch.commands.length === 1);
			expect(watch.errors).toEqual([]);
			const ofTheBus = (): string[] => timers.live().filter((timer) => timer.origin.includes('redis/bus.ts')).map((timer) => `${timer.kind} ${timer.ms} ${timer.origin}`);
			expect(ofTheBus().length).toBeGreaterThan(0);
			await watched.close();
			expect(ofTheBus()).toEqual([]);
		});
	});

	it('a storm of 100,000 cancels for unknown ids with 100 real ones: all 100 honoured over the bus, RSS growth < 200 MB', async () => {
		const UNKNOWN = 100_000;
		const REAL = 100;
		const { client } = await ownServer();
		const direct = client();
		const publisher = client();
		const prefix = uniquePrefix();
		const busM = bus({ client: direct, prefix });
		// Reconcile off: only the bus can abort the runs.
		const m = manager(direct, prefix, { instanceId: 'm', bus: busM, reconcileIntervalMs: 0 });
		// A registry-only instance writes CANCELLED (no bus): the storm below carries the messages.
		const canceller = manager(direct, prefix, { instanceId: 'canceller', reconcileIntervalMs: 0 });
		// Counts only: keeping 100,100 commands would be the test's own memory growth.
		let delivered = 0;
		const watchErrors: Error[] = [];
		await busM.subscribe(
			() => void delivered++,
			(error) => void watchErrors.push(error),
		);

		const runs = abortRecorder();
		const real = Array.from({ length: REAL }, (_, index) => m.manager.startTask({ runId: `real-${index}`, moduleId: 'storm' }, runs.task));
		await m.manager.flush();
		for (const runId of real) expect(await canceller.manager.cancelTask(runId, 'storm')).toBe(true);

		const messages = Array.from({ length: UNKNOWN }, (_, index) => JSON.stringify({ type: 'cancel', runId: `unknown-${index}-${randomBytes(4).toString('hex')}`, reason: 'storm' }));
		for (const [index, runId] of real.entries()) messages.splice(Math.floor(((index + 0.5) * messages.length) / REAL), 0, JSON.stringify({ type: 'cancel', runId, reason: 'storm' }));
		const rssBefore = process.memoryUsage().rss;
		const startedAt = performance.now();
		const channel = busM.channel;
		for (let offset = 0; offset < messages.length; offset += 1_000) {
			const pipeline = publisher.pipeline();
			for (const message of messages.slice(offset, offset + 1_000)) pipeline.publish(channel, message);
			await pipeline.exec();
		}
		const publishedAt = performance.now();
		const publishedMs = Math.round(publishedAt - startedAt);
		await eventually(`${REAL} real cancels`, () => runs.aborted.size === REAL, 20_000);
		const lastHonouredMs = Math.round(Math.max(...runs.aborted.values()) - publishedAt);
		await eventually('every message to arrive', () => delivered === UNKNOWN + REAL, 20_000);
		const deliveredMs = Math.round(performance.now() - startedAt);
		const rssAfter = process.memoryUsage().rss;
		const growthMb = (rssAfter - rssBefore) / 1024 / 1024;

		expect(watchErrors).toEqual([]);
		expect(m.errors).toEqual([]);
		expect(growthMb).toBeLessThan(200);
		console.info(
			`[bus storm] ${UNKNOWN.toLocaleString('en')} unknown + ${REAL} real cancels published in ${publishedMs} ms (pipelines of 1,000); ` +
				`all ${REAL} real honoured (the last ${lastHonouredMs} ms after the last publish); all ${(UNKNOWN + REAL).toLocaleString('en')} delivered ${deliveredMs} ms after the first; ` +
				`RSS ${(rssBefore / 1024 / 1024).toFixed(1)} → ${(rssAfter / 1024 / 1024).toFixed(1)} MB (${growthMb >= 0 ? '+' : ''}${growthMb.toFixed(1)} MB)`,
		);
	});

	describe('fuzzed messages (fast-check)', () => {
		let client: Redis;
		beforeAll(() => {
			client = connect();
		});
		afterAll(async () => {
			await client.quit();
		});

		const controlString = fc.string({ unit: fc.integer({ min: 0, max: 0x1f }).map((code) => String.fromCharCode(code)), maxLength: 40 });
		const trickyKey = fc.constantFrom('__proto__', 'constructor', 'prototype', 'type', 'runId', 'reason', 'origin', 'toString', 'valueOf', 'hasOwnProperty', 'ts', 'nonce', 'sig');
		const trickyId = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'), controlString.filter((id) => id.length > 0), fc.string({ maxLength: 300 }));
		// Raw messages: anything a hostile or broken publisher could send.
		const message: fc.Arbitrary<string> = fc.oneof(
			fc.jsonValue().map((value) => JSON.stringify(value)),
			fc.string({ unit: 'binary', maxLength: 200 }),
			controlString,
			fc.array(fc.jsonValue(), { maxLength: 10 }).map((value) => JSON.stringify(value)),
			fc.integer({ min: 1, max: 6_000 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth)),
			fc.integer({ min: 1, max: 3_000 }).map((depth) => `${'{"__proto__":'.repeat(depth)}{"polluted":true}${'}'.repeat(depth)}`),
			fc.integer({ min: 1, max: 2_000 }).map((depth) => `{"type":"cancel","runId":"deep","reason":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`),
			fc.dictionary(trickyKey, fc.oneof(fc.jsonValue(), fc.constant({ polluted: true }), fc.constant({ prototype: { polluted: true } })), { maxKeys: 8 }).map((value) => JSON.stringify(value)),
			fc.record({ type: fc.constantFrom('cancel', 'Cancel', 'CANCEL', ''), runId: fc.oneof(fc.integer(), fc.double(), fc.constant(null), fc.array(fc.string()), trickyId) }).map((value) => JSON.stringify(value)),
			fc.record({ type: fc.constant('cancel'), runId: trickyId, reason: fc.oneof(controlString, fc.jsonValue()), origin: fc.oneof(controlString, fc.integer()) }, { requiredKeys: ['type', 'runId'] }).map((value) => JSON.stringify(value)),
			fc.tuple(trickyId, fc.jsonValue()).map(([runId, extra]) => `{"type":"cancel","runId":${JSON.stringify(runId)},"__proto__":${JSON.stringify(extra)},"constructor":{"prototype":{"polluted":true}}}`),
			fc.record({ type: fc.constant('cancel'), runId: trickyId, ts: fc.oneof(fc.integer(), fc.string()), nonce: fc.oneof(fc.string(), fc.integer()), sig: fc.oneof(fc.base64String(), fc.string()) }).map((value) => JSON.stringify(value)),
		);

		const prototypeSnapshot = (): string[] => [Object.prototype, Array.prototype, Function.prototype, String.prototype].flatMap((proto) => Reflect.ownKeys(proto).map(String)).sort();

		for (const signed of [false, true]) {
			it(`${signed ? 'signed bus: 2,000 fuzzed messages all rejected' : '2,000 fuzzed messages'} (20 batches of 100): none crashes, no prototype polluted, each batch's valid cancel right after works`, async () => {
					const prefix = uniquePrefix();
				const signingKey = signed ? randomBytes(32) : undefined;
				const options = { client, prefix, ...(signingKey === undefined ? {} : { signingKey }) };
				const busM = bus(options);
				const publisher = bus(options);
				const m = manager(client, prefix, { instanceId: 'fuzz', bus: busM, reconcileIntervalMs: 0 });
				const cancelled = new Set<string>();
				m.manager.on('cancelled', (run) => cancelled.add(run.runId));
				const watch = inbox();
				await busM.subscribe(watch.handler, watch.onError);
				const before = prototypeSnapshot();
				let published = 0;
				let batchNumber = 0;

				await fc.assert(
					fc.asyncProperty(fc.array(message, { minLength: 100, maxLength: 100 }), async (batch) => {
						const runId = m.manager.startTask({ runId: `valid-${++batchNumber}`, moduleId: 'fuzz' }, abortRecorder().task);
						for (const raw of batch) await client.publish(busM.channel, raw);
						published += batch.length;
						await publisher.publish({ type: 'cancel', runId, reason: 'after the fuzz' });
						await eventually('the valid cancel after the batch', () => cancelled.has(runId));
						expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
						expect(prototypeSnapshot()).toEqual(before);
					}),
					{ numRuns: 20 },
				);

				// Every message was delivered or reported, once.
				expect(watch.commands.length + watch.errors.length).toBe(published + batchNumber);
				if (signed) {
					expect(watch.commands.map((command) => command.runId).every((runId) => runId.startsWith('valid-'))).toBe(true);
					expect(watch.errors.length).toBe(published);
				}
				for (const error of watch.errors) expect(['ERR_BUS_MESSAGE', 'ERR_BUS_SIGNATURE']).toContain(error.code);
				for (const command of watch.commands) expect(Object.getPrototypeOf(command)).toBe(Object.prototype);
				expect(cancelled.size).toBe(batchNumber);
				console.info(`[bus fuzz${signed ? ', signed' : ''}] ${published} fuzzed messages: ${watch.commands.length - batchNumber} delivered as cancels, ${watch.errors.length} dropped ${JSON.stringify(codes(watch.errors))}; ${batchNumber}/${batchNumber} valid cancels honoured`);
			});
		}
	});

	describe('message signing', () => {
		const EACH = 200;
		let client: Redis;
		beforeAll(() => {
			client = connect();
		});
		afterAll(async () => {
			await client.quit();
		});

		// The documented canonical form, to make messages that are correctly signed but stale.
		const sign = (key: Buffer, channel: string, command: { runId: string; reason?: string; origin?: string }, ts: number, nonce: string): string =>
			createHmac('sha256', key)
				.update(JSON.stringify(['runledger-cancel-v1', channel, 'cancel', command.runId, command.reason ?? null, command.origin ?? null, ts, nonce]), 'utf8')
				.digest('base64url');

		it(`rejects ${EACH} unsigned, ${EACH} forged (${EACH / 2} other key, ${EACH / 2} tampered), ${EACH} replayed and ${EACH} stale messages (100 %) and accepts ${EACH} valid ones (100 %)`, async () => {
			const prefix = uniquePrefix();
			const key = randomBytes(32);
			const receiver = bus({ client, prefix, signingKey: key });
			const sender = bus({ client, prefix, signingKey: key });
			const unsigned = bus({ client, prefix });
			const otherKey = bus({ client, prefix, signingKey: randomBytes(32) });
			const watch = inbox();
			await receiver.subscribe(watch.handler, watch.onError);
			// A plain subscriber on the channel, to capture the signed messages as sent.
			const raw = connect();
			cleanup.defer(() => raw.quit());
			const captured: string[] = [];
			raw.on('message', (_channel: string, message: string) => void captured.push(message));
			await raw.subscribe(receiver.channel);
			let sentinels = 0;
			// Waits until everything published so far reached the receiver: a valid signed sentinel last.
			const drain = async (): Promise<void> => {
				const runId = `sentinel-${++sentinels}`;
				await sender.publish({ type: 'cancel', runId });
				await eventually(runId, () => watch.commands.some((command) => command.runId === runId));
			};
			const phase = async (name: string, publish: () => Promise<void>): Promise<{ accepted: number; rejected: RunledgerError[] }> => {
				const commands = watch.commands.length;
				const errors = watch.errors.length;
				await publish();
				await drain();
				return { accepted: watch.commands.length - commands - 1, rejected: watch.errors.slice(errors) };
			};

			const valid = await phase('valid', async () => {
				for (let index = 0; index < EACH; index++) await sender.publish({ type: 'cancel', runId: `valid-${index}`, reason: 'signed', origin: 'sender' });
			});
			await eventually('the capture', () => captured.length >= EACH + 1);
			const signedMessages = captured.filter((message) => message.includes('"valid-'));
			expect(signedMessages).toHaveLength(EACH);

			const unsignedPhase = await phase('unsigned', async () => {
				for (let index = 0; index < EACH; index++) await unsigned.publish({ type: 'cancel', runId: `unsigned-${index}` });
			});
			const forged = await phase('forged', async () => {
				for (let index = 0; index < EACH / 2; index++) await otherKey.publish({ type: 'cancel', runId: `other-key-${index}` });
				for (const [index, message] of signedMessages.slice(0, EACH / 2).entries()) {
					// A captured valid message with its run id, reason or signature changed.
					const tampered = JSON.parse(message) as Record<string, unknown>;
					if (index % 3 === 0) tampered['runId'] = `tampered-${index}`;
					else if (index % 3 === 1) tampered['reason'] = 'changed';
					else tampered['sig'] = randomBytes(32).toString('base64url');
					await client.publish(receiver.channel, JSON.stringify(tampered));
				}
			});
			const replayed = await phase('replayed', async () => {
				for (const message of signedMessages) await client.publish(receiver.channel, message);
			});
			const stale = await phase('stale', async () => {
				for (let index = 0; index < EACH; index++) {
					// Correctly signed, but 31 s old (or 31 s ahead): outside maxMessageAgeMs (30 s).
					const ts = Date.now() + (index % 2 === 0 ? -31_000 : 31_000);
					const nonce = randomBytes(16).toString('base64url');
					const command = { runId: `stale-${index}` };
					await client.publish(receiver.channel, JSON.stringify({ type: 'cancel', ...command, ts, nonce, sig: sign(key, receiver.channel, command, ts, nonce) }));
				}
			});

			expect(valid).toEqual({ accepted: EACH, rejected: [] });
			for (const [name, outcome] of Object.entries({ unsigned: unsignedPhase, forged, replayed, stale })) {
				expect({ name, accepted: outcome.accepted, rejected: outcome.rejected.length }).toEqual({ name, accepted: 0, rejected: EACH });
				for (const error of outcome.rejected) expect(error).toMatchObject({ name: 'RunledgerError', code: 'ERR_BUS_SIGNATURE' });
			}
			expect(unsignedPhase.rejected[0]?.message).toMatch(/unsigned/u);
			expect(forged.rejected.every((error) => /bad signature/u.test(error.message))).toBe(true);
			expect(replayed.rejected.every((error) => /replayed/u.test(error.message))).toBe(true);
			expect(stale.rejected.every((error) => /timestamped/u.test(error.message))).toBe(true);
			expect(watch.commands.filter((command) => !command.runId.startsWith('sentinel-')).map((command) => command.runId)).toEqual(Array.from({ length: EACH }, (_, index) => `valid-${index}`));
			expect(watch.commands[0]).toEqual({ type: 'cancel', runId: 'valid-0', reason: 'signed', origin: 'sender' });
			console.info(`[bus signing] accepted ${valid.accepted}/${EACH} valid; rejected ${unsignedPhase.rejected.length}/${EACH} unsigned, ${forged.rejected.length}/${EACH} forged, ${replayed.rejected.length}/${EACH} replayed, ${stale.rejected.length}/${EACH} stale`);
		});

		it('a message signed for one prefix is rejected on another with the same key; a replay after maxMessageAgeMs is rejected as stale; a bus without a key reads signed messages as plain cancels', async () => {
			const key = randomBytes(32);
			const one = bus({ client, prefix: uniquePrefix(), signingKey: key, maxMessageAgeMs: 300 });
			const two = bus({ client, prefix: uniquePrefix(), signingKey: key, maxMessageAgeMs: 300 });
			const plain = bus({ client, prefix: one.channel.slice(0, -':cancel'.length) });
			const watchTwo = inbox();
			const watchOne = inbox();
			const watchPlain = inbox();
			await two.subscribe(watchTwo.handler, watchTwo.onError);
			await one.subscribe(watchOne.handler, watchOne.onError);
			await plain.subscribe(watchPlain.handler, watchPlain.onError);
			const raw = connect();
			cleanup.defer(() => raw.quit());
			const captured: string[] = [];
			raw.on('message', (_channel: string, message: string) => void captured.push(message));
			await raw.subscribe(one.channel);

			await one.publish({ type: 'cancel', runId: 'for-one' });
			await eventually('delivery on one', () => watchOne.commands.length === 1 && watchPlain.commands.length === 1 && captured.length === 1);
			expect(watchPlain.commands).toEqual([{ type: 'cancel', runId: 'for-one' }]);
			await client.publish(two.channel, captured[0] as string);
			await eventually('the cross-prefix rejection', () => watchTwo.errors.length === 1);
			expect(watchTwo.errors[0]).toMatchObject({ code: 'ERR_BUS_SIGNATURE', message: expect.stringMatching(/bad signature/u) });

			await new Promise((resolve) => setTimeout(resolve, 400));
			await client.publish(one.channel, captured[0] as string);
			await eventually('the late replay rejection', () => watchOne.errors.length === 1);
			expect(watchOne.errors[0]).toMatchObject({ code: 'ERR_BUS_SIGNATURE', message: expect.stringMatching(/timestamped/u) });
			expect(watchOne.commands).toHaveLength(1);
		});
	});

	it('isolation: 50 identical run ids under prefixes t1 and t2 on one Redis; cancelling all of t1 aborts 50/50 there and 0/50 in t2; every key and channel is under t1: or t2:', async () => {
		const RUNS = 50;
		const { client } = await ownServer();
		const setups = ['t1', 't2'].map((prefix) => {
			const direct = client();
			const busP = bus({ client: direct, prefix });
			const node = manager(direct, prefix, { instanceId: 'node', bus: busP, reconcileIntervalMs: 200, ownerLease: { ttlMs: 5_000 } });
			const other = manager(direct, prefix, { instanceId: 'other', bus: bus({ client: direct, prefix }), reconcileIntervalMs: 200, ownerLease: { ttlMs: 5_000 } });
			const runs = abortRecorder();
			const cancelledEvents: string[] = [];
			node.manager.on('cancelled', (run) => cancelledEvents.push(run.runId));
			other.manager.on('cancelled', (run) => cancelledEvents.push(run.runId));
			return { prefix, direct, node, other, runs, cancelledEvents, registry: new RedisRunRegistry({ client: direct, prefix }) };
		});
		const [t1, t2] = setups as [(typeof setups)[number], (typeof setups)[number]];
		const ids = Array.from({ length: RUNS }, (_, index) => `run-${index}`);
		for (const setup of setups) for (const runId of ids) setup.node.manager.startTask({ runId, moduleId: 'same', itemId: 'chat-1' }, setup.runs.task);
		for (const setup of setups) await setup.node.manager.flush();
		const observer = client();

		// t1's other instance cancels the whole item: CANCELLED in t1's registry, then t1's bus.
		expect(await t1.other.manager.cancelItemTasks('chat-1', 'tenant 1 only')).toBe(RUNS);
		await eventually('t1 aborts', () => t1.runs.aborted.size === RUNS);
		// Several reconcile intervals of t2 go by: nothing there may move.
		await new Promise((resolve) => setTimeout(resolve, 1_000));

		expect(t2.runs.aborted.size).toBe(0);
		expect(t2.cancelledEvents).toEqual([]);
		expect((await t2.registry.getRuns(ids)).map((run) => run?.status)).toEqual(ids.map(() => 'running'));
		expect((await t1.registry.getRuns(ids)).map((run) => run?.status)).toEqual(ids.map(() => 'cancelled'));

		const keys = await scanAll(observer);
		const channels = ((await observer.pubsub('CHANNELS', '*')) as string[]).sort();
		const outside = [...keys, ...channels].filter((name) => !name.startsWith('t1:') && !name.startsWith('t2:'));
		expect(outside).toEqual([]);
		expect(keys.some((name) => name.startsWith('t1:'))).toBe(true);
		expect(keys.some((name) => name.startsWith('t2:'))).toBe(true);
		expect(channels).toEqual(['t1:cancel', 't2:cancel']);
		console.info(`[bus isolation] t1 ${t1.runs.aborted.size}/${RUNS} aborted, t2 ${t2.runs.aborted.size}/${RUNS}; ${keys.length} keys (${keys.filter((k) => k.startsWith('t1:')).length} t1:, ${keys.filter((k) => k.startsWith('t2:')).length} t2:) and channels ${channels.join(', ')}, none outside`);

		// t2's runs end normally.
		expect(await t2.node.manager.cancelItemTasks('chat-1')).toBe(RUNS);
	});
});
