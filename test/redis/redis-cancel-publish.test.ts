/**
 * A cancel of a run owned elsewhere in one round trip: RedisCancellationBus.prepare encodes the
 * message as publish would, sharesServerWith tells whether a registry's client reaches the bus's
 * subscribers, and RedisRunRegistry.updateRunAndPublish publishes it from its compare-and-set
 * script, only when the compare-and-set applies.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { CancelCommand } from '../../src/bus.js';
import { RedisCancellationBus, RedisRunRegistry } from '../../src/redis/index.js';
import type { Run } from '../../src/run.js';
import { failOnUnhandledErrorsAfterEach } from '../support/process-traps.js';
import { RedisServer } from '../support/redis-server.js';
import { T0, connect, eventually, makeRun, redisUrl, uniquePrefix } from './support.js';

// Stored RUNNING by another instance, as the manager leaves a run it executes.
const runningRun = (overrides: Partial<Run> = {}): Run => makeRun({ status: 'running', parameters: {}, startedAt: T0, ownerId: 'elsewhere', ...overrides });

const CANCEL = { status: 'cancelled', error: { name: 'CancelledError', message: 'stop' }, completedAt: T0 + 5 } as const;
const ACTIVE = { ifStatus: ['queued', 'running'] } as const;

describe.skipIf(redisUrl === null)('cancel in one round trip', () => {
	failOnUnhandledErrorsAfterEach();
	let client: Redis;
	beforeAll(() => {
		client = connect();
	});
	afterAll(async () => {
		await client.quit();
	});

	/**
	 * A raw subscriber of `channel`: every message, in order. `settle()` publishes a marker and
	 * waits for it, so that whatever was published before it has arrived.
	 */
	const listen = async (channel: string) => {
		const subscriber = connect();
		const messages: string[] = [];
		const marker = `marker-${uniquePrefix()}`;
		let markers = 0;
		subscriber.on('message', (from: string, message: string) => {
			if (from !== channel) return;
			if (message === marker) markers++;
			else messages.push(message);
		});
		await subscriber.subscribe(channel);
		return {
			messages,
			settle: async () => {
				const expected = markers + 1;
				await client.publish(channel, marker);
				await eventually('the marker', () => markers === expected);
			},
			close: () => subscriber.quit(),
		};
	};

	describe('RedisCancellationBus.prepare', () => {
		it('encodes a command exactly as publish sends it, with the channel, and publishes nothing', async () => {
			const prefix = uniquePrefix();
			const bus = new RedisCancellationBus({ client, prefix });
			const raw = await listen(bus.channel);
			try {
				const command: CancelCommand = { type: 'cancel', runId: 'r1', reason: 'user asked', origin: 'instance-a' };
				const prepared = bus.prepare(command);
				expect(prepared).toEqual({ channel: `${prefix}:cancel`, message: JSON.stringify(command) });
				await raw.settle();
				expect(raw.messages).toEqual([]);
				await bus.publish(command);
				await raw.settle();
				expect(raw.messages).toEqual([prepared.message]);
				expect(() => bus.prepare({ type: 'cancel', runId: 'x', reason: 1n } as unknown as CancelCommand)).toThrow(expect.objectContaining({ name: 'ValidationError', field: 'command' }));
			} finally {
				await raw.close();
				await bus.close();
			}
		});

		it('signs as publish does, with a fresh nonce each time', () => {
			const bus = new RedisCancellationBus({ client, prefix: uniquePrefix(), signingKey: 'k'.repeat(32) });
			const command: CancelCommand = { type: 'cancel', runId: 'r1', reason: 'why' };
			const first = JSON.parse(bus.prepare(command).message) as Record<string, unknown>;
			const second = JSON.parse(bus.prepare(command).message) as Record<string, unknown>;
			expect(first).toMatchObject({ ...command, ts: expect.any(Number), nonce: expect.any(String), sig: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
			expect(Object.keys(first).sort()).toEqual(['nonce', 'reason', 'runId', 'sig', 'ts', 'type']);
			expect(second.nonce).not.toBe(first.nonce);
			expect(() => bus.prepare({ type: 'cancel' } as CancelCommand)).toThrow(expect.objectContaining({ name: 'ValidationError' }));
		});
	});

	describe('RedisCancellationBus.sharesServerWith', () => {
		it('is true for its own client and for clients of the same host, port and user', async () => {
			const bus = new RedisCancellationBus({ client, prefix: uniquePrefix() });
			const duplicate = client.duplicate({ lazyConnect: true });
			const sameUrl = new Redis(redisUrl as string, { lazyConnect: true });
			const otherDb = new Redis(`${redisUrl as string}/3`, { lazyConnect: true });
			try {
				expect(bus.sharesServerWith(client)).toBe(true);
				expect(bus.sharesServerWith(duplicate)).toBe(true);
				expect(bus.sharesServerWith(sameUrl)).toBe(true);
				// Channels ignore the database number.
				expect(bus.sharesServerWith(otherDb)).toBe(true);
			} finally {
				for (const created of [duplicate, sameUrl, otherDb]) created.disconnect();
			}
		});

		it('is false whenever it cannot be sure', async () => {
			const bus = new RedisCancellationBus({ client, prefix: uniquePrefix() });
			const { port } = new URL(redisUrl as string);
			const others = [
				new Redis({ host: '127.0.0.1', port: Number(port) + 1, lazyConnect: true }),
				new Redis({ host: 'localhost', port: Number(port), lazyConnect: true }),
				new Redis({ host: '127.0.0.1', port: Number(port), username: 'someone', lazyConnect: true }),
				new Redis({ sentinels: [{ host: '127.0.0.1', port: Number(port) }], name: 'primary', lazyConnect: true }),
				new Redis({ path: '/tmp/redis.sock', lazyConnect: true }),
			];
			try {
				for (const other of others) expect(bus.sharesServerWith(other)).toBe(false);
				expect(bus.sharesServerWith({} as Redis)).toBe(false);
				expect(bus.sharesServerWith(null as unknown as Redis)).toBe(false);
				// Between two sockets, the path decides.
				const onSocket = new RedisCancellationBus({ client: others[4] as Redis });
				const sameSocket = new Redis({ path: '/tmp/redis.sock', lazyConnect: true });
				others.push(sameSocket);
				expect(onSocket.sharesServerWith(sameSocket)).toBe(true);
				expect(onSocket.sharesServerWith(client)).toBe(false);
			} finally {
				for (const other of others) other.disconnect();
			}
		});
	});

	describe('RedisRunRegistry.updateRunAndPublish', () => {
		it('publishes exactly once when the compare-and-set applies, and never when it misses', async () => {
			const prefix = uniquePrefix();
			const registry = new RedisRunRegistry({ client, prefix });
			const bus = new RedisCancellationBus({ client, prefix });
			const raw = await listen(bus.channel);
			try {
				const run = runningRun();
				await registry.addRun(run);
				const publication = bus.prepare({ type: 'cancel', runId: run.runId, reason: 'stop' });
				const cancelled = await registry.updateRunAndPublish(run.runId, CANCEL, ACTIVE, publication);
				expect(cancelled).toMatchObject({ status: 'cancelled', error: CANCEL.error, completedAt: T0 + 5, ownerId: 'elsewhere' });
				expect(cancelled).toEqual(await registry.getRun(run.runId));
				await raw.settle();
				expect(raw.messages).toEqual([publication.message]);

				// Missed: already cancelled, an unknown run, an ifStatus that does not match, an empty ifStatus.
				expect(await registry.updateRunAndPublish(run.runId, CANCEL, ACTIVE, publication)).toBeUndefined();
				expect(await registry.updateRunAndPublish('unknown', CANCEL, ACTIVE, publication)).toBeUndefined();
				const queued = runningRun({ status: 'queued' });
				await registry.addRun(queued);
				expect(await registry.updateRunAndPublish(queued.runId, CANCEL, { ifStatus: 'running' }, publication)).toBeUndefined();
				expect(await registry.updateRunAndPublish(queued.runId, CANCEL, { ifStatus: [] }, publication)).toBeUndefined();
				// Illegal: rejects, publishes nothing.
				await expect(registry.updateRunAndPublish(run.runId, { status: 'running' }, undefined, publication)).rejects.toMatchObject({
					name: 'IllegalTransitionError',
					from: 'cancelled',
					to: 'running',
				});
				// Invalid: rejects before anything is sent.
				await expect(registry.updateRunAndPublish(queued.runId, CANCEL, ACTIVE, { channel: '', message: 'x' })).rejects.toMatchObject({ name: 'ValidationError', field: 'publication' });
				await expect(registry.updateRunAndPublish(queued.runId, CANCEL, ACTIVE, undefined as never)).rejects.toMatchObject({ name: 'ValidationError', field: 'publication' });
				await expect(registry.updateRunAndPublish(queued.runId, { status: 'nope' as never }, ACTIVE, publication)).rejects.toMatchObject({ name: 'ValidationError' });
				await raw.settle();
				expect(raw.messages).toEqual([publication.message]);
				expect(await registry.getRun(queued.runId)).toEqual(queued);

				// Without ifStatus, as updateRun: applies, publishes.
				const other = bus.prepare({ type: 'cancel', runId: queued.runId });
				expect(await registry.updateRunAndPublish(queued.runId, CANCEL, undefined, other)).toMatchObject({ status: 'cancelled' });
				await raw.settle();
				expect(raw.messages).toEqual([publication.message, other.message]);
			} finally {
				await raw.close();
				await bus.close();
			}
		});

		it('delivers to every bus of the prefix, once, after the cancel is visible in the registry', async () => {
			const prefix = uniquePrefix();
			const registry = new RedisRunRegistry({ client, prefix, terminalTtlMs: 60_000 });
			// The owner's bus is on a client of its own, as in another process.
			const ownerClient = connect();
			const owner = new RedisCancellationBus({ client: ownerClient, prefix });
			const canceller = new RedisCancellationBus({ client, prefix });
			const received: Array<{ command: CancelCommand; status: string | undefined }> = [];
			const errors: Error[] = [];
			try {
				await owner.subscribe(
					(command) => {
						void registry.getRun(command.runId).then((stored) => received.push({ command, status: stored?.status }));
					},
					(error) => errors.push(error),
				);
				const run = runningRun();
				await registry.addRun(run);
				expect(canceller.sharesServerWith(registry.client)).toBe(true);
				await registry.updateRunAndPublish(run.runId, CANCEL, ACTIVE, canceller.prepare({ type: 'cancel', runId: run.runId, reason: 'stop', origin: 'b' }));
				await eventually('the cancel to arrive', () => received.length === 1);
				await new Promise((resolve) => setTimeout(resolve, 100));
				expect(received).toEqual([{ command: { type: 'cancel', runId: run.runId, reason: 'stop', origin: 'b' }, status: 'cancelled' }]);
				expect(errors).toEqual([]);
				expect(await client.pttl(registry.keys.run(run.runId))).toBeGreaterThan(0);
			} finally {
				await owner.close();
				await canceller.close();
				await ownerClient.quit();
			}
		});

		it('sends signed messages that a signing bus verifies, once each', async () => {
			const prefix = uniquePrefix();
			const signingKey = Buffer.alloc(32, 7);
			const registry = new RedisRunRegistry({ client, prefix });
			const owner = new RedisCancellationBus({ client, prefix, signingKey });
			const canceller = new RedisCancellationBus({ client, prefix, signingKey });
			const stranger = new RedisCancellationBus({ client, prefix, signingKey: Buffer.alloc(32, 8) });
			const commands: CancelCommand[] = [];
			const errors: Error[] = [];
			try {
				await owner.subscribe((command) => commands.push(command), (error) => errors.push(error));
				const runs = [runningRun(), runningRun(), runningRun()];
				for (const run of runs) await registry.addRun(run);
				for (const run of runs) {
					const publication = canceller.prepare({ type: 'cancel', runId: run.runId, reason: 'signed' });
					expect(await registry.updateRunAndPublish(run.runId, CANCEL, ACTIVE, publication)).toMatchObject({ status: 'cancelled' });
					// The same message again: the compare-and-set misses, nothing is published (no replay to reject either).
					expect(await registry.updateRunAndPublish(run.runId, CANCEL, ACTIVE, publication)).toBeUndefined();
				}
				await eventually('three cancels', () => commands.length === 3);
				// Signed with another key: published (the compare-and-set applied) and rejected by the owner.
				const forged = runningRun();
				await registry.addRun(forged);
				await registry.updateRunAndPublish(forged.runId, CANCEL, ACTIVE, stranger.prepare({ type: 'cancel', runId: forged.runId }));
				await eventually('the forged message to be rejected', () => errors.length === 1);
				await new Promise((resolve) => setTimeout(resolve, 100));
				expect(commands).toEqual(runs.map((run) => ({ type: 'cancel', runId: run.runId, reason: 'signed' })));
				expect(errors.map((error) => (error as { code?: string }).code)).toEqual(['ERR_BUS_SIGNATURE']);
			} finally {
				await owner.close();
				await canceller.close();
				await stranger.close();
			}
		});

		it('changes nothing when Redis refuses the PUBLISH (an ACL without the channel)', async () => {
			const server = await RedisServer.started();
			const admin = new Redis(server.url);
			try {
				await admin.acl('SETUSER', 'writer', 'on', '>secret', '~*', 'resetchannels', '+@all');
				const limited = new Redis(server.url, { username: 'writer', password: 'secret' });
				try {
					const prefix = uniquePrefix();
					const registry = new RedisRunRegistry({ client: limited, prefix });
					const bus = new RedisCancellationBus({ client: limited, prefix });
					const run = runningRun();
					await registry.addRun(run);
					await expect(registry.updateRunAndPublish(run.runId, CANCEL, ACTIVE, bus.prepare({ type: 'cancel', runId: run.runId }))).rejects.toThrow(/NOPERM|can't publish/i);
					expect(await registry.getRun(run.runId)).toEqual(run);
					expect(await registry.listRuns({ status: 'running' })).toEqual({ runs: [run] });
					expect(await limited.smembers(registry.keys.active('elsewhere'))).toEqual([run.runId]);
				} finally {
					await limited.quit();
				}
			} finally {
				await admin.quit();
				await server.destroy();
			}
		});
	});
});
