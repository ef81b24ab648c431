/**
 * Bad input through the public API, on the memory registry: duplicate run ids, ids the manager
 * must refuse, results that are not plain data, hostile values thrown by tasks, and progress
 * values out of range. Whatever comes in, the outcome is a documented state — a synchronous
 * ValidationError / RunExistsError, or a run that ends and is recorded — never a crash, an
 * unhandled rejection or a run stuck RUNNING.
 *
 * The Redis registry's side is test/redis/bad-input.test.ts.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';

import {
	MemoryRunRegistry,
	RunExistsError,
	ValidationError,
	type Run,
	type RunErrorInfo,
	type RunRegistry,
	type TaskContext,
} from '../src/index.js';
import { MAX_ERROR_MESSAGE_LENGTH, MAX_ERROR_STACK_LENGTH } from '../src/error-info.js';
import { cappedLength, cutTail, expectOneAccepted, startConcurrently, thrownBy } from './support/bad-input.js';
import { deferred } from './support/deferred.js';
import { createManager, shutdownManagersAfterEach } from './support/harness.js';
import { failOnUnhandledErrorsAfterEach } from './support/process-traps.js';

failOnUnhandledErrorsAfterEach();
shutdownManagersAfterEach();




describe('duplicate run ids', () => {
	it('100 concurrent startTask calls with one runId: the task runs once, the 99 others throw RunExistsError synchronously', async () => {
		const { manager, registry, events } = createManager();
		const gate = deferred();
		const { outcomes, calls } = await startConcurrently(manager, 'dup', 100, gate.promise);
		// The refusals did not disturb the accepted run: it is the first caller's, and it runs.
		const winner = expectOneAccepted(outcomes, 'dup');
		gate.resolve();
		await manager.waitAll({ timeoutMs: 5_000 });
		expect(calls()).toBe(1);
		expect(await registry.getRun('dup')).toMatchObject({ status: 'completed', parameters: { index: winner }, result: { by: winner } });
		expect((await registry.listRuns()).runs).toHaveLength(1);
		expect(events.names('dup')).toEqual(['queued', 'started', 'completed']);
		expect(events.errors).toEqual([]);
		expect(manager.getStats()).toMatchObject({ completed: 1, failed: 0, queued: 0, running: 0 });
	});

	it('two managers sharing one MemoryRunRegistry, 50 starts each with one runId: one record, never overwritten; the other manager fails its copy with RunExistsError', async () => {
		const registry = new MemoryRunRegistry();
		const a = createManager({ instanceId: 'instance-a' }, registry);
		const b = createManager({ instanceId: 'instance-b' }, registry);
		const gate = deferred();
		const calls: string[] = [];
		const refusedSync: unknown[] = [];
		for (let index = 0; index < 100; index++) {
			const { manager } = index % 2 === 0 ? a : b;
			const by = index % 2 === 0 ? 'instance-a' : 'instance-b';
			try {
				manager.startTask({ runId: 'dup', moduleId: 'import', parameters: { by } }, async ({ signal }) => {
					calls.push(by);
					await Promise.race([gate.promise, new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))]);
					signal.throwIfAborted();
					return { by };
				});
			} catch (error) {
				refusedSync.push(error);
			}
		}
		// Each manager refuses its own 49 repeats at once; the registry decides between the two firsts.
		expect(refusedSync).toHaveLength(98);
		expect(refusedSync.every((error) => error instanceof RunExistsError)).toBe(true);

		await Promise.all([a.manager.flush(), b.manager.flush()]);
		const stored = await registry.getRun('dup');
		expect(stored?.ownerId).toMatch(/^instance-[ab]$/);
		const winner = stored?.ownerId === 'instance-a' ? a : b;
		const loser = winner === a ? b : a;
		const winnerId = stored?.ownerId as string;

		gate.resolve();
		await Promise.all([a.manager.waitAll({ timeoutMs: 5_000 }), b.manager.waitAll({ timeoutMs: 5_000 })]);
		// The registry holds the winner's run, completed by the winner; the loser never wrote over it.
		expect(await registry.getRun('dup')).toMatchObject({ status: 'completed', ownerId: winnerId, parameters: { by: winnerId }, result: { by: winnerId } });
		expect((await registry.listRuns()).runs).toHaveLength(1);
		expect(winner.events.names('dup')).toEqual(['queued', 'started', 'completed']);
		expect(winner.events.errors).toEqual([]);
		// The loser: its copy ends FAILED with a RunExistsError in its own view, reported on `error`.
		const [terminal] = loser.events.terminal('dup');
		expect(terminal?.event).toBe('failed');
		expect(terminal?.run.error).toMatchObject({ name: 'RunExistsError' });
		expect(loser.events.errors.map((error) => error.name)).toEqual(['RunExistsError']);
		expect(loser.manager.getStats()).toMatchObject({ completed: 0, failed: 1, queued: 0, running: 0 });
		// The task ran once, on the winner: a caller-chosen id waits at its start gate until its add has landed.
		expect(calls).toEqual([winnerId]);
	});

	// Documented (docs/concepts.md, the lifecycle): "queued → failed: the registry holds another run
	// with this id". A run the registry refuses must not execute: the id is the caller's idempotency
	// key, and the task's side effects would happen twice.
	it('a runId the registry already holds (a run that finished, or one another manager executes): the new copy fails with RunExistsError and its function is never called', async () => {
		const registry = new MemoryRunRegistry();
		const a = createManager({ instanceId: 'instance-a' }, registry);
		const b = createManager({ instanceId: 'instance-b' }, registry);
		const calls: string[] = [];

		// A run that finished, started again (the manager has forgotten it: only the registry knows).
		a.manager.startTask({ runId: 'finished', moduleId: 'import' }, async () => {
			calls.push('finished: first');
			return 'first';
		});
		await a.manager.waitAll({ timeoutMs: 5_000 });
		// (Other parameters than the first's: a copy equal in everything and made in the same
		// millisecond is the case of 'duplicate run ids created in the same millisecond' below.)
		a.manager.startTask({ runId: 'finished', moduleId: 'import', parameters: { attempt: 2 } }, async () => {
			calls.push('finished: again');
			return 'again';
		});
		await a.manager.waitAll({ timeoutMs: 5_000 });

		// A run that another manager executes, its record written.
		const gate = deferred();
		a.manager.startTask({ runId: 'busy', moduleId: 'import' }, async () => {
			calls.push('busy: a');
			await gate.promise;
		});
		await a.manager.flush();
		b.manager.startTask({ runId: 'busy', moduleId: 'import' }, async () => {
			calls.push('busy: b');
			await new Promise((resolve) => setTimeout(resolve, 20));
			return 'b';
		});
		await b.manager.waitAll({ timeoutMs: 5_000 });
		gate.resolve();
		await a.manager.waitAll({ timeoutMs: 5_000 });

		// What holds today: the registry keeps the firsts' records, untouched.
		expect(await registry.getRun('finished')).toMatchObject({ status: 'completed', result: 'first' });
		expect(await registry.getRun('busy')).toMatchObject({ status: 'completed', ownerId: 'instance-a' });
		// Documented: each refused copy ends FAILED with a RunExistsError (its manager's view, events and
		// counts), and its function is never called.
		const terminals = (harness: typeof a, runId: string): Array<[string, string | undefined]> =>
			harness.events.terminal(runId).map((recorded) => [recorded.event, recorded.run.error?.name]);
		expect.soft(terminals(a, 'finished'), 'terminal events of "finished" on a (the first, then the copy)').toEqual([
			['completed', undefined],
			['failed', 'RunExistsError'],
		]);
		expect.soft(terminals(b, 'busy'), 'terminal events of "busy" on b (the copy)').toEqual([['failed', 'RunExistsError']]);
		expect.soft(calls.sort(), 'task functions called').toEqual(['busy: a', 'finished: first']);
	});
});

/**
 * A RunRegistry that hands every call to `inner`, except that the first `failures` writes of
 * `runId` (addRun, or a batch of applyWrites holding it) throw before reaching it, as a dropped
 * connection would. Injected like any adapter: the manager sees only the public contract.
 */
function failingFirstWrites(inner: MemoryRunRegistry, runId: string, failures: number): RunRegistry {
	let left = failures;
	const fail = (): never => {
		left--;
		throw new Error('connection reset (injected)');
	};
	return {
		addRun: async (run) => (left > 0 && run.runId === runId ? fail() : inner.addRun(run)),
		getRun: (id) => inner.getRun(id),
		getRuns: (ids) => inner.getRuns(ids),
		updateRun: (id, patch, options) => inner.updateRun(id, patch, options),
		applyWrites: async (writes) => (left > 0 && writes.some((write) => (write.type === 'add' ? write.run.runId : write.runId) === runId) ? fail() : inner.applyWrites(writes)),
		listRuns: (query) => inner.listRuns(query),
		deleteRun: (id) => inner.deleteRun(id),
		cleanupOldRuns: (maxAgeMs) => inner.cleanupOldRuns(maxAgeMs),
	};
}

/**
 * The manager tells its own record from another run with the same id by what they hold: when an
 * add is refused (src/run-writer.ts #add, after a failed attempt) or a write finds a terminal
 * record (src/manager.ts onConflict), a record "with our creation time" was taken for its own.
 * `createdAt` is in milliseconds, so a second run with the same id created in the same millisecond
 * (a double submit, two instances, a fast client retry) must still not be taken for the first.
 * The clock is frozen here to make that millisecond certain.
 */
describe('duplicate run ids created in the same millisecond', () => {
	afterEach(() => {
		vi.useRealTimers();
	});

	it('a copy of a finished run, same millisecond: the copy fails with RunExistsError and never runs; the first\'s record and events are untouched', async () => {
		vi.setSystemTime(new Date('2030-01-01T00:00:00.000Z'));
		const { manager, registry, events } = createManager();
		const calls: string[] = [];
		manager.startTask({ runId: 'same-ms', moduleId: 'import', parameters: { by: 'first' } }, async () => {
			calls.push('first');
			return { by: 'first' };
		});
		await manager.waitAll({ timeoutMs: 5_000 });
		manager.startTask({ runId: 'same-ms', moduleId: 'import', parameters: { by: 'copy' } }, async () => {
			calls.push('copy');
			return { by: 'copy' };
		});
		await manager.waitAll({ timeoutMs: 5_000 });

		expect(await registry.getRun('same-ms')).toMatchObject({ status: 'completed', parameters: { by: 'first' }, result: { by: 'first' } });
		expect.soft(calls, 'task functions called').toEqual(['first']);
		expect.soft(events.terminal('same-ms').map((recorded) => [recorded.event, recorded.run.error?.name, recorded.run.parameters]), 'terminal events: the first, then the copy').toEqual([
			['completed', undefined, { by: 'first' }],
			['failed', 'RunExistsError', { by: 'copy' }],
		]);
		expect.soft(events.errors.map((error) => error.name), 'error events').toEqual(['RunExistsError']);
		expect.soft(manager.getStats(), 'counts').toMatchObject({ completed: 1, failed: 1 });
	});

	// The same, with a copy equal to the first in everything the manager compares (module, item,
	// parameters, owner, creation millisecond): started again by the same manager once the first has
	// finished, as a client's double submit of one request would be. The copy is still another run
	// (docs/concepts.md: "queued → failed: the registry holds another run with this id"), and must not
	// be reported as having completed with the first's result without ever running.
	it('an identical copy of a finished run, same manager, same millisecond: fails with RunExistsError, not "completed" with the first\'s result', async () => {
		vi.setSystemTime(new Date('2030-01-01T00:00:00.000Z'));
		const { manager, registry, events } = createManager({ instanceId: 'instance-a' });
		const calls: string[] = [];
		const input = { runId: 'same-ms', moduleId: 'import', itemId: 'chat-1', parameters: { file: 'a.csv' } };
		manager.startTask(input, async () => {
			calls.push('first');
			return { rows: 1 };
		});
		await manager.waitAll({ timeoutMs: 5_000 });
		manager.startTask(input, async () => {
			calls.push('copy');
			return { rows: 2 };
		});
		await manager.waitAll({ timeoutMs: 5_000 });

		expect(await registry.getRun('same-ms')).toMatchObject({ status: 'completed', result: { rows: 1 } });
		expect.soft(calls, 'task functions called').toEqual(['first']);
		expect.soft(events.terminal('same-ms').map((recorded) => [recorded.event, recorded.run.error?.name]), 'terminal events: the first, then the copy').toEqual([
			['completed', undefined],
			['failed', 'RunExistsError'],
		]);
		expect.soft(manager.getStats(), 'counts').toMatchObject({ completed: 1, failed: 1 });
	});

	// With its first write failed, the copy cannot know whether its id is taken, and its start gate
	// opens anyway (availability first, docs/concepts.md: "When the registry fails that write, the
	// run starts anyway"): its function may run. What must hold is that the retried add, which finds
	// the first run's record (same millisecond, same module), does not take it for its own add that
	// landed, and never writes over it.
	it('another manager\'s copy, same millisecond, whose first add attempt failed: never takes the first\'s record for its own nor writes over it; RunExistsError reported', async () => {
		vi.setSystemTime(new Date('2030-01-01T00:00:00.000Z'));
		const registry = new MemoryRunRegistry();
		const a = createManager({ instanceId: 'instance-a' }, registry);
		const b = createManager({ instanceId: 'instance-b' }, failingFirstWrites(registry, 'same-ms', 1));
		const gate = deferred();
		const calls: string[] = [];
		a.manager.startTask({ runId: 'same-ms', moduleId: 'import', parameters: { by: 'instance-a' } }, async () => {
			calls.push('instance-a');
			await gate.promise;
			return { by: 'instance-a' };
		});
		await a.manager.flush();
		b.manager.startTask({ runId: 'same-ms', moduleId: 'import', parameters: { by: 'instance-b' } }, async () => {
			calls.push('instance-b');
			return { by: 'instance-b' };
		});
		// b's first add fails; its retry (100 ms backoff at most) finds a's record.
		await b.manager.waitAll({ timeoutMs: 5_000 });
		gate.resolve();
		await a.manager.waitAll({ timeoutMs: 5_000 });

		expect.soft(await registry.getRun('same-ms'), 'the stored run: a\'s, whole').toMatchObject({ status: 'completed', ownerId: 'instance-a', parameters: { by: 'instance-a' }, result: { by: 'instance-a' } });
		expect.soft(a.events.terminal('same-ms').map((recorded) => [recorded.event, recorded.run.result]), 'terminal events on a').toEqual([['completed', { by: 'instance-a' }]]);
		expect.soft(a.events.errors, 'error events on a').toEqual([]);
		expect.soft(calls.filter((call) => call === 'instance-a'), 'a\'s function called once').toEqual(['instance-a']);
		expect.soft(b.events.errors.map((error) => error.name), 'error events on b: the failed write, then the conflict').toContain('RunExistsError');
		expect.soft(await b.manager.getRun('same-ms'), 'b reads the registry\'s run once its copy is done').toMatchObject({ ownerId: 'instance-a', result: { by: 'instance-a' } });
	});
});

describe('ids', () => {
	const bad: ReadonlyArray<readonly [string, unknown]> = [
		['empty', ''],
		['257 characters', 'x'.repeat(257)],
		['10,000 characters', 'x'.repeat(10_000)],
		['a NUL', 'a\u0000b'],
		['a line feed', 'line\nbreak'],
		['a carriage return', 'cr\rlf'],
		['a tab', 'tab\there'],
		['an escape sequence', '\u001b[31mred'],
		['U+001F', 'unit\u001fsep'],
		['DEL', 'del\u007f'],
		['a number', 42],
		['an object', { id: 'x' }],
	];

	for (const field of ['runId', 'moduleId', 'itemId'] as const) {
		for (const [label, value] of bad) {
			it(`${field} ${label}: ValidationError (field run.${field}) thrown by startTask, nothing started or stored`, async () => {
				const { manager, registry, events } = createManager();
				let called = false;
				const input = { runId: 'valid-run', moduleId: 'valid-module', itemId: 'valid-item', [field]: value };
				const error = thrownBy(() => manager.startTask(input as never, () => void (called = true)));
				expect(error).toBeInstanceOf(ValidationError);
				expect(error).toMatchObject({ code: 'ERR_VALIDATION', field: `run.${field}` });
				// The message names the field and stays short whatever the value (a 10,000-character id is not echoed).
				expect((error as Error).message).toContain(`run.${field}`);
				expect((error as Error).message.length).toBeLessThan(300);
				await manager.waitAll({ timeoutMs: 1_000 });
				expect(called).toBe(false);
				expect(manager.getActiveTaskCount()).toBe(0);
				expect(events.events).toEqual([]);
				expect((await registry.listRuns()).runs).toEqual([]);
			});
		}
	}

	it('ids of exactly 1 and 256 characters, with spaces, colons, quotes, glob characters and non-ASCII letters, are accepted and stored as given', async () => {
		const { manager, registry } = createManager();
		const ids = ['x', 'y'.repeat(256), 'with space', 'a:b:c', '"quoted"', '*?[]{}\\', 'ünïcødé-日本'];
		for (const id of ids) manager.startTask({ runId: id, moduleId: id, itemId: id }, async () => id);
		await manager.waitAll({ timeoutMs: 5_000 });
		for (const id of ids) {
			expect(await registry.getRun(id)).toMatchObject({ runId: id, moduleId: id, itemId: id, status: 'completed', result: id });
		}
	});

	// The rule (src/run-validation.ts, docs/redis.md): "1 to 256 characters without control
	// characters" — printable characters only, as ids end up in URLs, log lines and Redis keys.
	// The C1 controls U+0080–U+009F are control characters too (U+009B is the 8-bit CSI of terminals).
	for (const [label, id] of [['U+0085 (NEL)', 'next\u0085line'], ['U+009B (CSI)', '\u009b31mred']] as const) {
		it(`runId with the C1 control character ${label}: ValidationError like the C0 controls`, () => {
			const { manager } = createManager();
			const error = thrownBy(() => manager.startTask({ runId: id, moduleId: 'm' }, () => undefined));
			expect(error).toBeInstanceOf(ValidationError);
			expect(error).toMatchObject({ field: 'run.runId' });
		});
	}
});

/** A run's stored record once it settled (the task returned `value`). */
async function storedResultOf(value: unknown): Promise<{ run: Run | undefined; errors: string[] }> {
	const { manager, registry, events } = createManager();
	const runId = manager.startTask({ moduleId: 'export' }, async () => value);
	const report = await manager.waitAll({ timeoutMs: 5_000 });
	expect(report).toEqual({ settled: true, pending: [] });
	return { run: await registry.getRun(runId), errors: events.errors.map((error) => `${error.name}: ${error.message}`) };
}

describe('results the memory registry stores: copied as structuredClone would, or kept by reference when it cannot be cloned', () => {
	class Point {
		constructor(
			readonly x: number,
			readonly y: number,
		) {}

		get length(): number {
			return Math.hypot(this.x, this.y);
		}
	}

	it('a BigInt, a symbol and NaN are primitives: stored as they are', async () => {
		const symbol = Symbol('result');
		for (const value of [10n ** 30n, symbol, Number.NaN, Number.POSITIVE_INFINITY, -0]) {
			const { run, errors } = await storedResultOf(value);
			expect(run?.status).toBe('completed');
			expect(Object.is(run?.result, value)).toBe(true);
			expect(errors).toEqual([]);
		}
	});

	it('a cyclic object: a copy with the same cycle', async () => {
		const cyclic: Record<string, unknown> = { name: 'loop', list: [1, 2] };
		cyclic.self = cyclic;
		(cyclic.list as unknown[]).push(cyclic);
		const { run, errors } = await storedResultOf(cyclic);
		const result = run?.result as Record<string, unknown>;
		expect(run?.status).toBe('completed');
		expect(result).not.toBe(cyclic);
		expect(result.self).toBe(result);
		expect((result.list as unknown[])[2]).toBe(result);
		expect(errors).toEqual([]);
	});

	it('a Map, a Set and a Date: copies of the same class and content', async () => {
		const map = new Map<unknown, unknown>([['a', 1], [2, { b: 3 }]]);
		const set = new Set([1, 'two', 3n]);
		const date = new Date(Date.UTC(2024, 0, 2, 3, 4, 5));
		for (const value of [map, set, date]) {
			const { run, errors } = await storedResultOf(value);
			expect(run?.status).toBe('completed');
			expect(run?.result).not.toBe(value);
			expect(run?.result).toBeInstanceOf(value.constructor as new () => unknown);
			expect(run?.result).toEqual(value);
			expect(errors).toEqual([]);
		}
	});

	it('a class instance: a plain object of its own fields, as structuredClone makes it (prototype and getters gone)', async () => {
		const { run, errors } = await storedResultOf(new Point(3, 4));
		expect(run?.status).toBe('completed');
		expect(Object.getPrototypeOf(run?.result)).toBe(Object.prototype);
		expect(run?.result).toStrictEqual({ x: 3, y: 4 });
		expect(errors).toEqual([]);
	});

	it('a function, an object holding one and an object whose toJSON throws cannot be cloned: kept by reference', async () => {
		const fn = (): number => 1;
		const holder = { fn, data: [1, 2] };
		const hostileJson = { toJSON: (): never => { throw new Error('no JSON for you'); } };
		for (const value of [fn, holder, hostileJson]) {
			const { run, errors } = await storedResultOf(value);
			expect(run?.status).toBe('completed');
			expect(run?.result).toBe(value);
			expect(errors).toEqual([]);
		}
	});

	it('undefined: completed without a result; null: stored as null', async () => {
		const none = await storedResultOf(undefined);
		expect(none.run?.status).toBe('completed');
		expect(none.run && 'result' in none.run).toBe(false);
		const nil = await storedResultOf(null);
		expect(nil.run).toMatchObject({ status: 'completed', result: null });
	});

	// structuredClone rethrows what a getter throws, and the registry keeps what it cannot clone by
	// reference (src/memory-registry.ts, class comment). The registry must stay consistent either
	// way: an update that cannot be applied changes nothing ("nothing changes", updateRun's doc).
	it('an object whose getter throws: kept by reference (it cannot be cloned), the run completed with its completedAt, listed and evictable like any other', async () => {
		const hostile = Object.defineProperty({ a: 1 }, 'boom', {
			enumerable: true,
			get(): never {
				throw new Error('getter boom');
			},
		});
		const { manager, registry } = createManager();
		const runId = manager.startTask({ moduleId: 'export' }, async () => hostile);
		expect(await manager.waitAll({ timeoutMs: 5_000 })).toEqual({ settled: true, pending: [] });
		const stored = await registry.getRun(runId);
		expect(stored).toMatchObject({ status: 'completed' });
		expect(stored?.completedAt).toBeGreaterThan(0);
		expect(stored?.result).toBe(hostile);
		// The indexes agree with the record: it is listed as completed, and retention can remove it.
		expect((await registry.listRuns({ status: 'completed' })).runs.map((run) => run.runId)).toEqual([runId]);
		expect((await registry.listRuns({ status: 'running' })).runs).toEqual([]);
		// cleanupOldRuns(0) removes runs that ended strictly before now: let the clock move past completedAt.
		await new Promise((resolve) => setTimeout(resolve, 2));
		expect(await registry.cleanupOldRuns(0)).toBe(1);
	});
});

/** Runs a task that throws `value` (asynchronously) and returns the stored error of its run. */
async function storedErrorOf(value: unknown): Promise<{ run: Run | undefined; error: RunErrorInfo }> {
	const { manager, registry } = createManager();
	const runId = manager.startTask({ moduleId: 'export' }, async () => {
		await Promise.resolve();
		throw value;
	});
	const report = await manager.waitAll({ timeoutMs: 5_000 });
	expect(report).toEqual({ settled: true, pending: [] });
	const run = await registry.getRun(runId);
	expect(run?.status).toBe('failed');
	return { run, error: run?.error as RunErrorInfo };
}

/** Every stored error is `{ name, message, stack?, code? }` of strings, within the caps of src/error-info.ts. */
function expectWithinCaps(error: RunErrorInfo): void {
	expect(Object.keys(error).every((key) => ['name', 'message', 'stack', 'code'].includes(key))).toBe(true);
	for (const value of Object.values(error)) expect(typeof value).toBe('string');
	expect(error.name.length).toBeGreaterThan(0);
	expect(error.name.length).toBeLessThanOrEqual(cappedLength(200));
	expect(error.message.length).toBeLessThanOrEqual(cappedLength(MAX_ERROR_MESSAGE_LENGTH));
	if (error.stack !== undefined) expect(error.stack.length).toBeLessThanOrEqual(cappedLength(MAX_ERROR_STACK_LENGTH));
	if (error.code !== undefined) expect(error.code.length).toBeLessThanOrEqual(cappedLength(200));
}

const TEN_MB = 10 * 1024 * 1024;

describe('values thrown by tasks: stored as { name, message, stack?, code? } within the caps', () => {
	it('null, undefined, a number and a symbol: an Error naming the value', async () => {
		for (const [value, shown] of [
			[null, 'null'],
			[undefined, 'undefined'],
			[42, '42'],
			[Symbol('odd'), 'Symbol(odd)'],
			[10n, '10'],
		] as const) {
			const { error } = await storedErrorOf(value);
			expect(error).toEqual({ name: 'Error', message: `Task threw a non-Error value: ${shown}` });
			expectWithinCaps(error);
		}
	});

	it('a string: the message is the string', async () => {
		const { error } = await storedErrorOf('disk full');
		expect(error).toEqual({ name: 'Error', message: 'disk full' });
	});

	it('a 10 MB string: the message cut to MAX_ERROR_MESSAGE_LENGTH characters plus a note of how many were dropped', async () => {
		const { error } = await storedErrorOf('s'.repeat(TEN_MB));
		expect(error.message).toBe(`${'s'.repeat(MAX_ERROR_MESSAGE_LENGTH)}${cutTail(TEN_MB, MAX_ERROR_MESSAGE_LENGTH)}`);
		expectWithinCaps(error);
	});

	it('an Error with a 10 MB message: message and stack cut to their caps', async () => {
		const { error } = await storedErrorOf(new Error('m'.repeat(TEN_MB)));
		expect(error.name).toBe('Error');
		expect(error.message).toBe(`${'m'.repeat(MAX_ERROR_MESSAGE_LENGTH)}${cutTail(TEN_MB, MAX_ERROR_MESSAGE_LENGTH)}`);
		// V8 puts the message in the stack too: the stack is cut at its own cap.
		const stack = error.stack as string;
		expect(stack.slice(0, MAX_ERROR_STACK_LENGTH)).toBe(`Error: ${'m'.repeat(MAX_ERROR_STACK_LENGTH - 'Error: '.length)}`);
		expect(stack.slice(MAX_ERROR_STACK_LENGTH)).toMatch(/^… \(\d+ more characters\)$/);
		expectWithinCaps(error);
	});

	it('an Error with a 10 MB stack, name and code: each cut to its cap', async () => {
		const error = new Error('short') as Error & { code?: string };
		error.stack = 'k'.repeat(TEN_MB);
		error.name = 'N'.repeat(TEN_MB);
		error.code = 'C'.repeat(TEN_MB);
		const { error: stored } = await storedErrorOf(error);
		expect(stored).toEqual({
			name: `${'N'.repeat(200)}${cutTail(TEN_MB, 200)}`,
			message: 'short',
			stack: `${'k'.repeat(MAX_ERROR_STACK_LENGTH)}${cutTail(TEN_MB, MAX_ERROR_STACK_LENGTH)}`,
			code: `${'C'.repeat(200)}${cutTail(TEN_MB, 200)}`,
		});
		expectWithinCaps(stored);
	});

	it('frozen objects: a frozen Error and a frozen { name, message, code } keep their fields', async () => {
		const frozenError = Object.freeze(Object.assign(new Error('frozen error'), { code: 'E_FROZEN' }));
		const { error } = await storedErrorOf(frozenError);
		expect(error).toMatchObject({ name: 'Error', message: 'frozen error', code: 'E_FROZEN' });
		expect(error.stack).toContain('frozen error');
		expectWithinCaps(error);

		const { error: plain } = await storedErrorOf(Object.freeze({ name: 'QuotaError', message: 'over quota', code: 429 }));
		expect(plain).toEqual({ name: 'QuotaError', message: 'over quota', code: '429' });
	});

	it('errors whose causes form a cycle: stored without the cause, the run fails normally', async () => {
		const outer = new Error('outer') as Error & { cause?: unknown };
		const inner = new Error('inner', { cause: outer });
		outer.cause = inner;
		const { error } = await storedErrorOf(outer);
		expect(error).toMatchObject({ name: 'Error', message: 'outer' });
		expect(Object.keys(error).sort()).toEqual(['message', 'name', 'stack']);

		const selfCause = { name: 'Loop', message: 'self', cause: undefined as unknown };
		selfCause.cause = selfCause;
		const { error: self } = await storedErrorOf(selfCause);
		expect(self).toEqual({ name: 'Loop', message: 'self' });
	});

	it('objects whose getters or conversions throw: what can be read is kept, the rest is replaced', async () => {
		const messageGetter = Object.defineProperty(new Error('unused'), 'message', {
			get(): never {
				throw new Error('no message for you');
			},
		});
		const { error: fromGetter } = await storedErrorOf(messageGetter);
		expect(fromGetter.name).toBe('Error');
		expectWithinCaps(fromGetter);

		const { error: fromConversion } = await storedErrorOf({
			toString(): never {
				throw new Error('no string for you');
			},
		});
		expect(fromConversion).toEqual({ name: 'Error', message: 'Task threw a non-Error value: [object Object]' });

		const { error: fromNonStringMessage } = await storedErrorOf({ message: { toString: (): never => { throw new Error('nope'); } } });
		expect(fromNonStringMessage.name).toBe('Error');
		expectWithinCaps(fromNonStringMessage);
	});

});

describe('progress values: NaN and non-numbers throw a ValidationError from reportProgress; numbers are clamped to 0–100 (TaskContext)', () => {
	/** Reports `value` from a task that catches what reportProgress throws; returns that and the stored progress. */
	async function report(value: unknown): Promise<{ thrown: unknown; progress: Run['progress']; status: Run['status'] | undefined }> {
		const { manager, registry } = createManager({ progressThrottleMs: 0 });
		let thrown: unknown;
		const runId = manager.startTask({ moduleId: 'import' }, async ({ reportProgress }: TaskContext) => {
			try {
				reportProgress(value as number, 'step');
			} catch (error) {
				thrown = error;
			}
			await Promise.resolve();
			return 'done';
		});
		expect(await manager.waitAll({ timeoutMs: 5_000 })).toEqual({ settled: true, pending: [] });
		const run = await registry.getRun(runId);
		return { thrown, progress: run?.progress, status: run?.status };
	}

	for (const [label, value] of [
		['NaN', Number.NaN],
		["'50%'", '50%'],
		['{}', {}],
		['null', null],
		['undefined', undefined],
		['a BigInt', 50n],
	] as const) {
		it(`${label}: ValidationError (field percent) thrown from reportProgress; nothing recorded; the run goes on`, async () => {
			const { thrown, progress, status } = await report(value);
			expect(thrown).toBeInstanceOf(ValidationError);
			expect(thrown).toMatchObject({ field: 'percent', code: 'ERR_VALIDATION' });
			expect(progress).toBeUndefined();
			expect(status).toBe('completed');
		});
	}

	for (const [label, value, clamped] of [
		['Infinity', Number.POSITIVE_INFINITY, 100],
		['-Infinity', Number.NEGATIVE_INFINITY, 0],
		['-1', -1, 0],
		['101', 101, 100],
		['1e308', 1e308, 100],
		['-0', -0, 0],
		['Number.MIN_VALUE', Number.MIN_VALUE, Number.MIN_VALUE],
		['99.5', 99.5, 99.5],
	] as const) {
		it(`${label}: clamped to ${clamped}, recorded, no error`, async () => {
			const { thrown, progress, status } = await report(value);
			expect(thrown).toBeUndefined();
			expect(progress).toEqual({ percent: clamped, message: 'step' });
			expect(Object.is(progress?.percent, -0)).toBe(false);
			expect(status).toBe('completed');
		});
	}

	it('a task that does not catch the ValidationError fails with it, recorded like any error', async () => {
		const { manager, registry } = createManager();
		const runId = manager.startTask({ moduleId: 'import' }, async ({ reportProgress }) => {
			reportProgress(Number.NaN);
		});
		await manager.waitAll({ timeoutMs: 5_000 });
		expect(await registry.getRun(runId)).toMatchObject({ status: 'failed', error: { name: 'ValidationError', code: 'ERR_VALIDATION' } });
	});

	it('a progress message that is not a string: ValidationError (field message)', async () => {
		const { manager } = createManager();
		let thrown: unknown;
		manager.startTask({ moduleId: 'import' }, async ({ reportProgress }) => {
			try {
				reportProgress(50, 42 as unknown as string);
			} catch (error) {
				thrown = error;
			}
		});
		await manager.waitAll({ timeoutMs: 5_000 });
		expect(thrown).toMatchObject({ name: 'ValidationError', field: 'message' });
	});
});

// Last in the file on purpose: an unhandled rejection fails every later test of the file too
// (test/support/process-traps.ts keeps what it caught once its assertion failed).
describe('hostile values thrown by tasks', () => {
	// src/error-info.ts promises to handle "strings, null, frozen or hostile values". A Proxy is the
	// most hostile: `instanceof` and `in` run its traps, and a revoked one throws on any of them.
	for (const [label, make] of [
		['a revoked Proxy', () => {
			const { proxy, revoke } = Proxy.revocable({}, {});
			revoke();
			return proxy;
		}],
		['a Proxy whose every trap throws', () =>
			new Proxy(
				{},
				{
					get: () => { throw new Error('get trap'); },
					has: () => { throw new Error('has trap'); },
					getPrototypeOf: () => { throw new Error('getPrototypeOf trap'); },
					ownKeys: () => { throw new Error('ownKeys trap'); },
					getOwnPropertyDescriptor: () => { throw new Error('getOwnPropertyDescriptor trap'); },
				},
			)],
	] as const) {
		it(`${label}: the run ends FAILED with an Error, no unhandled rejection, nothing stuck RUNNING`, async () => {
			const { manager, registry } = createManager();
			const value = make();
			const runId = manager.startTask({ moduleId: 'export' }, async () => {
				await Promise.resolve();
				throw value;
			});
			expect(await manager.waitAll({ timeoutMs: 2_000 })).toEqual({ settled: true, pending: [] });
			const run = await registry.getRun(runId);
			expect(run?.status).toBe('failed');
			expectWithinCaps(run?.error as RunErrorInfo);
		});
	}
});
