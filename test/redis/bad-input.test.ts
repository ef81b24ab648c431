/**
 * Bad input on the Redis registry, through the manager: duplicate run ids (in one manager, and
 * across two instances sharing a prefix), ids that must be refused before anything reaches Redis
 * and odd but valid ids that must not disturb the key layout, results that JSON cannot represent
 * or represents differently (beyond test/redis/unstorable-results.test.ts), hostile thrown values
 * and out-of-range progress. Every case ends in a documented state, never a crash.
 *
 * The memory registry's side is test/bad-input.test.ts.
 */
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

import {
	BackgroundTaskManager,
	RunExistsError,
	ValidationError,
	type BackgroundTaskManagerOptions,
	type Run,
	type RunErrorInfo,
	type RunRegistry,
	type RunWrite,
	type RunledgerError,
} from '../../src/index.js';
import { MAX_ERROR_MESSAGE_LENGTH, MAX_ERROR_STACK_LENGTH } from '../../src/error-info.js';
import { RedisCancellationBus, RedisRunRegistry } from '../../src/redis/index.js';
import { deferred } from '../support/deferred.js';
import { failOnUnhandledErrorsAfterEach } from '../support/process-traps.js';
import { connect, redisUrl, scanKeys, uniquePrefix } from './support.js';
import { cappedLength, cutTail, expectOneAccepted, startConcurrently, thrownBy } from '../support/bad-input.js';

let client: Redis;

interface Node {
	readonly manager: BackgroundTaskManager;
	readonly registry: RedisRunRegistry;
	readonly errors: RunledgerError[];
	/** Terminal events: [runId, event, error name]. */
	readonly terminals: Array<[string, string, string | undefined]>;
	readonly prefix: string;
}

const nodes: Node[] = [];
const extraClients: Redis[] = [];

/** A manager on a RedisRunRegistry under `prefix` (a new one by default), shut down after the test. */
function node(options: BackgroundTaskManagerOptions & { prefix?: string; client?: Redis } = {}): Node {
	const { prefix = uniquePrefix(), client: own = client, ...managerOptions } = options;
	const registry = new RedisRunRegistry({ client: own, prefix });
	const manager = new BackgroundTaskManager(registry, managerOptions);
	const errors: RunledgerError[] = [];
	const terminals: Node['terminals'] = [];
	manager.on('error', (error) => errors.push(error));
	for (const event of ['completed', 'failed', 'cancelled'] as const) {
		manager.on(event, (run: Run) => terminals.push([run.runId, event, run.error?.name]));
	}
	const created = { manager, registry, errors, terminals, prefix };
	nodes.push(created);
	return created;
}


const TEN_MB = 10 * 1024 * 1024;

describe.skipIf(redisUrl === null)('bad input on the Redis registry', () => {
	failOnUnhandledErrorsAfterEach();
	beforeAll(() => {
		client = connect();
	});
	afterEach(async () => {
		await Promise.all(nodes.splice(0).map((created) => created.manager.shutdown({ graceMs: 0, abortGraceMs: 20 })));
		await Promise.all(extraClients.splice(0).map((extra) => extra.quit()));
	});
	afterAll(async () => {
		await client.quit();
	});

	describe('duplicate run ids', () => {
		it('100 concurrent startTask calls with one runId on one manager: the task runs once, the 99 others throw RunExistsError synchronously; one record', async () => {
			const { manager, registry, errors, prefix } = node({ instanceId: 'instance-a' });
			const gate = deferred();
			const { outcomes, calls } = await startConcurrently(manager, 'dup', 100, gate.promise);
			const winner = expectOneAccepted(outcomes, 'dup');
			gate.resolve();
			expect(await manager.waitAll({ timeoutMs: 5_000 })).toEqual({ settled: true, pending: [] });
			expect(calls()).toBe(1);
			expect(await registry.getRun('dup')).toMatchObject({ status: 'completed', parameters: { index: winner }, result: { by: winner } });
			expect((await registry.listRuns()).runs.map((run) => run.runId)).toEqual(['dup']);
			expect((await scanKeys(client, prefix)).filter((key) => key.startsWith(`${prefix}:run:`))).toEqual([`${prefix}:run:dup`]);
			expect(errors).toEqual([]);
		});

		/**
		 * Two instances (own clients, one prefix, the Redis bus), 50 starts each with the same runId,
		 * interleaved. What happens:
		 * - each manager refuses its own 49 repeats at once (RunExistsError thrown by startTask);
		 * - each manager's first copy is added to Redis by its writer (src/run-writer.ts #add): the
		 *   add script is check-then-insert, so exactly one lands; the other gets RunExistsError,
		 *   reads the stored record, sees another run (another createdAt) and reports a conflict;
		 * - the losing manager (src/manager.ts onConflict) reports the RunExistsError on `error` and
		 *   ends its copy FAILED in its own view; it writes nothing more, so the winner's record is
		 *   never overwritten, and it completes normally;
		 * - a run with a caller-chosen id waits at its start gate until its add has landed, so the
		 *   losing copy's function is never called: the task runs once (the next test checks this
		 *   with the record already there).
		 */
		it('two instances sharing a prefix, 50 starts each: one record, the winner\'s, never overwritten; the other instance fails its copy with RunExistsError', async () => {
			const prefix = uniquePrefix();
			const [clientA, clientB] = [connect(), connect()];
			extraClients.push(clientA, clientB);
			const a = node({ prefix, client: clientA, instanceId: 'instance-a', bus: new RedisCancellationBus({ client: clientA, prefix }) });
			const b = node({ prefix, client: clientB, instanceId: 'instance-b', bus: new RedisCancellationBus({ client: clientB, prefix }) });
			const gate = deferred();
			const aborted: Record<string, unknown> = {};
			const calls: string[] = [];
			const refusedSync: unknown[] = [];
			for (let index = 0; index < 100; index++) {
				const instance = index % 2 === 0 ? 'instance-a' : 'instance-b';
				const { manager } = instance === 'instance-a' ? a : b;
				try {
					manager.startTask({ runId: 'dup', moduleId: 'import', parameters: { by: instance } }, async ({ signal }) => {
						calls.push(instance);
						await Promise.race([gate.promise, new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))]);
						if (signal.aborted) aborted[instance] = signal.reason;
						signal.throwIfAborted();
						return { by: instance };
					});
				} catch (error) {
					refusedSync.push(error);
				}
			}
			expect(refusedSync).toHaveLength(98);
			expect(refusedSync.every((error) => error instanceof RunExistsError)).toBe(true);

			await Promise.all([a.manager.flush(), b.manager.flush()]);
			const stored = await a.registry.getRun('dup');
			expect(stored?.ownerId).toMatch(/^instance-[ab]$/);
			const winnerId = stored?.ownerId as string;
			const [winner, loser] = winnerId === 'instance-a' ? [a, b] : [b, a];

			gate.resolve();
			expect(await a.manager.waitAll({ timeoutMs: 5_000 })).toEqual({ settled: true, pending: [] });
			expect(await b.manager.waitAll({ timeoutMs: 5_000 })).toEqual({ settled: true, pending: [] });

			const final = await a.registry.getRun('dup');
			expect(final).toMatchObject({ status: 'completed', ownerId: winnerId, parameters: { by: winnerId }, result: { by: winnerId } });
			expect(final?.createdAt).toBe(stored?.createdAt);
			expect((await a.registry.listRuns()).runs.map((run) => run.runId)).toEqual(['dup']);
			expect(winner.terminals).toEqual([['dup', 'completed', undefined]]);
			expect(winner.errors).toEqual([]);
			expect(loser.terminals).toEqual([['dup', 'failed', 'RunExistsError']]);
			expect(loser.errors.map((error) => error.name)).toEqual(['RunExistsError']);
			expect(loser.manager.getStats()).toMatchObject({ completed: 0, failed: 1, queued: 0, running: 0, pendingWrites: 0 });
			// Once the loser has forgotten its copy, it reads the registry's run like any other instance.
			expect(await loser.manager.getRun('dup')).toMatchObject({ status: 'completed', ownerId: winnerId });
			expect(aborted[winnerId]).toBeUndefined();
			// The task ran once, on the winner.
			expect(calls).toEqual([winnerId]);
		});

		// docs/concepts.md, the lifecycle: "queued → failed: the registry holds another run with this
		// id". The run id is the caller's idempotency key: a copy the registry refuses must not execute.
		it('a runId another instance holds (running, or finished): the copy is refused and its task function is never called — the task runs once', async () => {
			const prefix = uniquePrefix();
			const a = node({ prefix, instanceId: 'instance-a' });
			const b = node({ prefix, instanceId: 'instance-b' });
			const calls: string[] = [];
			const gate = deferred();

			a.manager.startTask({ runId: 'busy', moduleId: 'import' }, async () => {
				calls.push('busy: a');
				await gate.promise;
			});
			await a.manager.flush();
			b.manager.startTask({ runId: 'busy', moduleId: 'import' }, async ({ signal }) => {
				calls.push('busy: b');
				await new Promise((resolve) => setTimeout(resolve, 20));
				signal.throwIfAborted();
			});

			a.manager.startTask({ runId: 'finished', moduleId: 'import' }, async () => {
				calls.push('finished: a');
				return 'a';
			});
			await a.manager.flush();
			await new Promise((resolve) => setTimeout(resolve, 20));
			b.manager.startTask({ runId: 'finished', moduleId: 'import' }, async () => {
				calls.push('finished: b');
				return 'b';
			});

			await b.manager.waitAll({ timeoutMs: 5_000 });
			gate.resolve();
			await a.manager.waitAll({ timeoutMs: 5_000 });
			expect(await a.registry.getRun('busy')).toMatchObject({ status: 'completed', ownerId: 'instance-a' });
			expect(await a.registry.getRun('finished')).toMatchObject({ status: 'completed', ownerId: 'instance-a', result: 'a' });
			expect.soft(b.terminals.sort(), 'terminal events on b').toEqual([
				['busy', 'failed', 'RunExistsError'],
				['finished', 'failed', 'RunExistsError'],
			]);
			expect.soft(calls.sort(), 'task functions called').toEqual(['busy: a', 'finished: a']);
		});
	});

	/**
	 * The manager tells its own record from another run with the same id by what they hold: when an
	 * add is refused (src/run-writer.ts #add, after a failed attempt) or a write finds a terminal
	 * record (src/manager.ts onConflict), a record "with our creation time" was taken for its own.
	 * Two instances starting one run id in the same millisecond (a double submit behind a load
	 * balancer) must still not be taken for one run. The test process's clock is frozen to make
	 * that millisecond certain (Redis' own TIME is untouched).
	 */
	describe('duplicate run ids created in the same millisecond on two instances', () => {
		afterEach(() => {
			vi.useRealTimers();
		});

		it("the copy of a run the other instance finished: fails with RunExistsError and never runs; no 'completed' for it", async () => {
			vi.setSystemTime(new Date('2030-01-01T00:00:00.000Z'));
			const prefix = uniquePrefix();
			const a = node({ prefix, instanceId: 'instance-a' });
			const b = node({ prefix, instanceId: 'instance-b' });
			const calls: string[] = [];
			a.manager.startTask({ runId: 'same-ms', moduleId: 'import', parameters: { by: 'instance-a' } }, async () => {
				calls.push('instance-a');
				return { by: 'instance-a' };
			});
			await a.manager.waitAll({ timeoutMs: 5_000 });
			b.manager.startTask({ runId: 'same-ms', moduleId: 'import', parameters: { by: 'instance-b' } }, async () => {
				calls.push('instance-b');
				return { by: 'instance-b' };
			});
			await b.manager.waitAll({ timeoutMs: 5_000 });

			expect(await a.registry.getRun('same-ms')).toMatchObject({ status: 'completed', ownerId: 'instance-a', result: { by: 'instance-a' } });
			expect.soft(calls, 'task functions called').toEqual(['instance-a']);
			expect.soft(b.terminals, 'terminal events on b').toEqual([['same-ms', 'failed', 'RunExistsError']]);
			expect.soft(b.errors.map((error) => error.name), 'error events on b').toEqual(['RunExistsError']);
		});

		// Two instances without instanceId (the default) and one request submitted to both at once —
		// same id, module, item and parameters, in the same millisecond: the copies are equal in
		// everything the manager compares (src/run-writer.ts isSameRun), but they are two runs all the
		// same. The add that loses must be refused (RunExistsError), not taken for this manager's own
		// add "sent twice by the client": else both task functions run and one result overwrites the other.
		it('identical copies from two instances without instanceId, same millisecond: the task runs once, the losing copy fails with RunExistsError', async () => {
			vi.setSystemTime(new Date('2030-01-01T00:00:00.000Z'));
			const prefix = uniquePrefix();
			const [clientA, clientB] = [connect(), connect()];
			extraClients.push(clientA, clientB);
			const a = node({ prefix, client: clientA });
			const b = node({ prefix, client: clientB });
			const gate = deferred();
			const calls: string[] = [];
			const input = { runId: 'same-ms', moduleId: 'import', itemId: 'chat-1', parameters: { file: 'a.csv' } };
			for (const [name, instance] of [['a', a], ['b', b]] as const) {
				instance.manager.startTask(input, async () => {
					calls.push(name);
					await gate.promise;
					return { by: name };
				});
			}
			await Promise.all([a.manager.flush(), b.manager.flush()]);
			gate.resolve();
			await Promise.all([a.manager.waitAll({ timeoutMs: 5_000 }), b.manager.waitAll({ timeoutMs: 5_000 })]);

			const stored = await a.registry.getRun('same-ms');
			expect(stored?.status).toBe('completed');
			expect.soft(calls, 'task functions called').toHaveLength(1);
			const terminals = [...a.terminals, ...b.terminals].map(([, event, name]) => `${event}${name === undefined ? '' : ` ${name}`}`).sort();
			expect.soft(terminals, 'terminal events on both instances').toEqual(['completed', 'failed RunExistsError']);
		});

		// With its first write failed, the copy cannot know whether its id is taken, and its start gate
		// opens anyway (availability first, docs/concepts.md): its function may run. What must hold is
		// that the retried add, which finds the first run's record (same millisecond, same module), does
		// not take it for its own add that landed, and never writes over it.
		it('the copy whose first add attempt failed (a dropped connection): never takes the first instance\'s record for its own nor writes over it; RunExistsError reported', async () => {
			vi.setSystemTime(new Date('2030-01-01T00:00:00.000Z'));
			const prefix = uniquePrefix();
			const a = node({ prefix, instanceId: 'instance-a' });
			// b's registry: the same prefix, but the first write that carries the run fails before reaching Redis.
			const inner = new RedisRunRegistry({ client, prefix });
			let failures = 1;
			const carries = (writes: readonly RunWrite[]): boolean => writes.some((write) => (write.type === 'add' ? write.run.runId : write.runId) === 'same-ms');
			const flaky: RunRegistry = {
				addRun: async (run) => {
					if (failures > 0 && run.runId === 'same-ms') {
						failures--;
						throw new Error('connection reset (injected)');
					}
					return inner.addRun(run);
				},
				applyWrites: async (writes) => {
					if (failures > 0 && carries(writes)) {
						failures--;
						throw new Error('connection reset (injected)');
					}
					return inner.applyWrites(writes);
				},
				getRun: (runId) => inner.getRun(runId),
				getRuns: (runIds) => inner.getRuns(runIds),
				updateRun: (runId, patch, options) => inner.updateRun(runId, patch, options),
				listRuns: (query) => inner.listRuns(query),
				deleteRun: (runId) => inner.deleteRun(runId),
				cleanupOldRuns: (maxAgeMs) => inner.cleanupOldRuns(maxAgeMs),
			};
			const b = new BackgroundTaskManager(flaky, { instanceId: 'instance-b' });
			const bErrors: string[] = [];
			b.on('error', (error) => bErrors.push(error.name));
			nodes.push({ manager: b, registry: inner, errors: [], terminals: [], prefix });

			const gate = deferred();
			const calls: string[] = [];
			a.manager.startTask({ runId: 'same-ms', moduleId: 'import', parameters: { by: 'instance-a' } }, async () => {
				calls.push('instance-a');
				await gate.promise;
				return { by: 'instance-a' };
			});
			await a.manager.flush();
			b.startTask({ runId: 'same-ms', moduleId: 'import', parameters: { by: 'instance-b' } }, async () => {
				calls.push('instance-b');
				return { by: 'instance-b' };
			});
			await b.waitAll({ timeoutMs: 5_000 });
			gate.resolve();
			await a.manager.waitAll({ timeoutMs: 5_000 });

			expect.soft(await a.registry.getRun('same-ms'), "the stored run: a's, whole").toMatchObject({ status: 'completed', ownerId: 'instance-a', parameters: { by: 'instance-a' }, result: { by: 'instance-a' } });
			expect.soft(a.terminals, 'terminal events on a').toEqual([['same-ms', 'completed', undefined]]);
			expect.soft(a.errors, 'error events on a').toEqual([]);
			expect.soft(calls.filter((call) => call === 'instance-a'), "a's function called once").toEqual(['instance-a']);
			expect.soft(bErrors, 'error events on b: the failed write, then the conflict').toContain('RunExistsError');
			expect.soft(await b.getRun('same-ms'), "b reads the registry's run once its copy is done").toMatchObject({ ownerId: 'instance-a', result: { by: 'instance-a' } });
		});
	});

	describe('ids', () => {
		const bad: ReadonlyArray<readonly [string, unknown]> = [
			['empty', ''],
			['257 characters', 'x'.repeat(257)],
			['a NUL', 'a\u0000b'],
			['a line feed', 'a\nb'],
			['an escape sequence', '\u001b[2J'],
			['DEL', 'a\u007f'],
		];
		for (const field of ['runId', 'moduleId', 'itemId'] as const) {
			it(`${field}: empty, over 256 characters or with control characters → ValidationError (run.${field}) from startTask; nothing reaches Redis`, async () => {
				const { manager, prefix } = node();
				for (const [label, value] of bad) {
					const input = { runId: 'valid-run', moduleId: 'valid-module', itemId: 'valid-item', [field]: value };
					const error = thrownBy(() => manager.startTask(input as never, async () => 'ran'));
					expect(error, label).toBeInstanceOf(ValidationError);
					expect(error, label).toMatchObject({ code: 'ERR_VALIDATION', field: `run.${field}` });
				}
				expect(await manager.waitAll({ timeoutMs: 1_000 })).toEqual({ settled: true, pending: [] });
				expect(await scanKeys(client, prefix)).toEqual([]);
			});
		}

		it('valid ids with colons, glob characters, braces, spaces, quotes, non-ASCII letters or 256 characters: stored under their own key, listed by module and item, cancellable by item', async () => {
			const { manager, registry, prefix } = node({ instanceId: 'node-1' });
			const ids = ['a:b:c', 'run:*', '*?[]', '{tag}', 'with space', '"quoted"', 'back\\slash', 'ünïcødé-日本', 'z'.repeat(256)];
			const gate = deferred();
			for (const id of ids) {
				manager.startTask({ runId: id, moduleId: id, itemId: id }, async ({ signal }) => {
					await Promise.race([gate.promise, new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))]);
					signal.throwIfAborted();
					return id;
				});
			}
			await manager.flush();
			for (const id of ids) {
				expect(await registry.getRun(id), id).toMatchObject({ runId: id, moduleId: id, itemId: id, status: 'running' });
				expect((await registry.listRuns({ moduleId: id })).runs.map((run) => run.runId), id).toEqual([id]);
				expect((await registry.listRuns({ itemId: id })).runs.map((run) => run.runId), id).toEqual([id]);
				expect(await client.exists(`${prefix}:run:${id}`), id).toBe(1);
			}
			// A glob-like item id cancels its own run only.
			expect(await manager.cancelItemTasks('*?[]')).toBe(1);
			expect(await manager.cancelItemTasks('run:*')).toBe(1);
			gate.resolve();
			await manager.waitAll({ timeoutMs: 5_000 });
			const statuses = Object.fromEntries((await registry.listRuns()).runs.map((run) => [run.runId, run.status]));
			expect(statuses).toEqual(Object.fromEntries(ids.map((id) => [id, id === '*?[]' || id === 'run:*' ? 'cancelled' : 'completed'])));
		});
	});

	/** Starts a task that returns `value` (at once, or after its start was written) and returns the stored run and the error events. */
	async function resultRun(value: unknown, timing: 'at once' | 'after its start was written'): Promise<{ run: Run | undefined; errors: RunledgerError[]; manager: BackgroundTaskManager }> {
		const { manager, registry, errors } = node();
		const runId = manager.startTask({ moduleId: 'export' }, async () => {
			if (timing === 'after its start was written') await new Promise((resolve) => setTimeout(resolve, 50));
			return value;
		});
		expect(await manager.waitAll({ timeoutMs: 5_000 })).toEqual({ settled: true, pending: [] });
		return { run: await registry.getRun(runId), errors, manager };
	}

	describe('results JSON cannot represent (beyond unstorable-results.test.ts): FAILED with a ResultNotStorableError, reported once', () => {
		const nested = (): unknown => ({ rows: [1, Number.NaN] });
		const unstorable: ReadonlyArray<readonly [string, () => unknown]> = [
			['Infinity', () => Number.POSITIVE_INFINITY],
			['-Infinity', () => Number.NEGATIVE_INFINITY],
			['NaN inside an array inside an object', nested],
			['Infinity deep inside', () => ({ a: { b: { c: [{ d: Number.POSITIVE_INFINITY }] } } })],
			['a BigInt inside an array', () => [1, 2n]],
			['an object whose toJSON returns undefined', () => ({ toJSON: () => undefined })],
			['an object whose toJSON returns a BigInt', () => ({ toJSON: () => 5n })],
			['an object whose getter throws', () => Object.defineProperty({}, 'boom', { enumerable: true, get: (): never => { throw new Error('getter boom'); } })],
			['a function nested in an object', () => ({ handlers: { onDone: () => 1 } })],
		];
		for (const [label, make] of unstorable) {
			for (const timing of ['at once', 'after its start was written'] as const) {
				it(`${label} (returned ${timing})`, async () => {
					const { run, errors, manager } = await resultRun(make(), timing);
					expect(run).toMatchObject({ status: 'failed', error: { name: 'ResultNotStorableError' } });
					expect(run && 'result' in run).toBe(false);
					expect(run?.completedAt).toBeGreaterThan(0);
					expect(manager.getStats()).toMatchObject({ completed: 0, failed: 1, pendingWrites: 0 });
					expect(errors.map((error) => error.name)).toEqual(['RegistryError']);
				});
			}
		}
	});

	describe('results JSON represents differently: stored as JSON.stringify makes them (docs/redis.md, Values)', () => {
		class Point {
			constructor(
				readonly x: number,
				readonly y: number,
			) {}

			get length(): number {
				return Math.hypot(this.x, this.y);
			}
		}
		const symbolKeyed = { visible: 1, [Symbol('hidden')]: 2 };
		const converted: ReadonlyArray<readonly [string, unknown, unknown]> = [
			['a Map', new Map([['a', 1]]), {}],
			['a Set', new Set([1, 2]), {}],
			['a Date', new Date(Date.UTC(2024, 0, 2, 3, 4, 5)), '2024-01-02T03:04:05.000Z'],
			['a class instance', new Point(3, 4), { x: 3, y: 4 }],
			['undefined members', { kept: 1, dropped: undefined }, { kept: 1 }],
			['a sparse array', [1, , 3], [1, null, 3]],
			['symbol keys', symbolKeyed, { visible: 1 }],
			['-0', -0, 0],
			['a boxed number', Object(5) as unknown, 5],
			['a typed array', new Uint8Array([1, 2]), { 0: 1, 1: 2 }],
			['an Error', new Error('as a result'), {}],
			['null', null, null],
			['a lone surrogate', '\ud800', '\ud800'],
		];
		for (const [label, value, expected] of converted) {
			it(`${label} → ${JSON.stringify(expected)}`, async () => {
				const { run, errors } = await resultRun(value, 'at once');
				expect(run?.status).toBe('completed');
				expect(run?.result).toStrictEqual(expected);
				expect(errors).toEqual([]);
			});
		}

		it('undefined → completed without a result', async () => {
			const { run, errors } = await resultRun(undefined, 'after its start was written');
			expect(run?.status).toBe('completed');
			expect(run && 'result' in run).toBe(false);
			expect(errors).toEqual([]);
		});
	});

	describe('values thrown by tasks: stored as JSON { name, message, stack?, code? } within the caps of src/error-info.ts', () => {
		async function storedError(value: unknown): Promise<RunErrorInfo> {
			const { manager, registry } = node();
			const runId = manager.startTask({ moduleId: 'export' }, async () => {
				await Promise.resolve();
				throw value;
			});
			expect(await manager.waitAll({ timeoutMs: 5_000 })).toEqual({ settled: true, pending: [] });
			const run = await registry.getRun(runId);
			expect(run?.status).toBe('failed');
			const error = run?.error as RunErrorInfo;
			expect(Object.keys(error).every((key) => ['name', 'message', 'stack', 'code'].includes(key))).toBe(true);
			for (const text of Object.values(error)) expect(typeof text).toBe('string');
			expect(error.name.length).toBeLessThanOrEqual(cappedLength(200));
			expect(error.message.length).toBeLessThanOrEqual(cappedLength(MAX_ERROR_MESSAGE_LENGTH));
			if (error.stack !== undefined) expect(error.stack.length).toBeLessThanOrEqual(cappedLength(MAX_ERROR_STACK_LENGTH));
			if (error.code !== undefined) expect(error.code.length).toBeLessThanOrEqual(cappedLength(200));
			return error;
		}

		it('null, a string and a symbol', async () => {
			expect(await storedError(null)).toEqual({ name: 'Error', message: 'Task threw a non-Error value: null' });
			expect(await storedError('plain words')).toEqual({ name: 'Error', message: 'plain words' });
			expect(await storedError(Symbol('odd'))).toEqual({ name: 'Error', message: 'Task threw a non-Error value: Symbol(odd)' });
		});

		it('a 10 MB string and an Error with a 10 MB message: cut to MAX_ERROR_MESSAGE_LENGTH (+ a note), the stack to MAX_ERROR_STACK_LENGTH', async () => {
			expect((await storedError('s'.repeat(TEN_MB))).message).toBe(`${'s'.repeat(MAX_ERROR_MESSAGE_LENGTH)}${cutTail(TEN_MB, MAX_ERROR_MESSAGE_LENGTH)}`);
			const error = await storedError(new Error('m'.repeat(TEN_MB)));
			expect(error.message).toBe(`${'m'.repeat(MAX_ERROR_MESSAGE_LENGTH)}${cutTail(TEN_MB, MAX_ERROR_MESSAGE_LENGTH)}`);
			expect(error.stack?.slice(0, MAX_ERROR_STACK_LENGTH)).toBe(`Error: ${'m'.repeat(MAX_ERROR_STACK_LENGTH - 'Error: '.length)}`);
		});

		it('10 MB name, stack and code: each cut to its cap', async () => {
			const error = Object.assign(new Error('short'), { name: 'N'.repeat(TEN_MB), code: 'C'.repeat(TEN_MB) });
			error.stack = 'k'.repeat(TEN_MB);
			expect(await storedError(error)).toEqual({
				name: `${'N'.repeat(200)}${cutTail(TEN_MB, 200)}`,
				message: 'short',
				stack: `${'k'.repeat(MAX_ERROR_STACK_LENGTH)}${cutTail(TEN_MB, MAX_ERROR_STACK_LENGTH)}`,
				code: `${'C'.repeat(200)}${cutTail(TEN_MB, 200)}`,
			});
		});

		it('frozen objects and errors whose causes form a cycle', async () => {
			expect(await storedError(Object.freeze({ name: 'QuotaError', message: 'over quota', code: 'E_QUOTA' }))).toEqual({ name: 'QuotaError', message: 'over quota', code: 'E_QUOTA' });
			const outer = new Error('outer') as Error & { cause?: unknown };
			outer.cause = new Error('inner', { cause: outer });
			const stored = await storedError(Object.freeze(outer));
			expect(stored).toMatchObject({ name: 'Error', message: 'outer' });
			expect(Object.keys(stored).sort()).toEqual(['message', 'name', 'stack']);
		});
	});

	describe('progress values (TaskContext: clamped to 0–100; NaN and non-numbers throw a ValidationError)', () => {
		it('Infinity, -Infinity, -1 and 101 are clamped and stored as JSON; NaN, "50%" and {} throw from reportProgress and store nothing', async () => {
			const { manager, registry } = node({ progressThrottleMs: 0 });
			const cases: ReadonlyArray<readonly [unknown, number | undefined]> = [
				[Number.POSITIVE_INFINITY, 100],
				[Number.NEGATIVE_INFINITY, 0],
				[-1, 0],
				[101, 100],
				[Number.NaN, undefined],
				['50%', undefined],
				[{}, undefined],
			];
			const runs = cases.map(([value]) => {
				let thrown: unknown;
				const runId = manager.startTask({ moduleId: 'import' }, async ({ reportProgress }) => {
					try {
						reportProgress(value as number);
					} catch (error) {
						thrown = error;
					}
					await new Promise((resolve) => setTimeout(resolve, 20));
					return 'done';
				});
				return { runId, thrown: () => thrown };
			});
			expect(await manager.waitAll({ timeoutMs: 5_000 })).toEqual({ settled: true, pending: [] });
			for (const [index, [value, clamped]] of cases.entries()) {
				const { runId, thrown } = runs[index] as (typeof runs)[number];
				const stored = await registry.getRun(runId);
				expect(stored?.status, String(value)).toBe('completed');
				if (clamped === undefined) {
					expect(thrown(), String(value)).toMatchObject({ name: 'ValidationError', field: 'percent' });
					expect(stored?.progress, String(value)).toBeUndefined();
				} else {
					expect(thrown(), String(value)).toBeUndefined();
					expect(stored?.progress, String(value)).toEqual({ percent: clamped });
				}
			}
		});
	});
});
