/**
 * MemoryRunRegistry: the conformance suite, then what is particular to the in-memory store —
 * the maxRuns bound, input validation, cloning, the index structure and its memory use.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../src/errors.js';
import { OrderedIndex } from '../src/memory/ordered-index.js';
import { MemoryRunRegistry } from '../src/memory-registry.js';
import type { Run, RunStatus } from '../src/run.js';
import { describeRunRegistryConformance } from '../src/testing/index.js';

describeRunRegistryConformance({ describe, it, expect }, () => new MemoryRunRegistry(), { name: 'MemoryRunRegistry', batchRead: true, leases: true });

const T0 = 1_700_000_000_000;
let counter = 0;

function makeRun(overrides: Partial<Run> = {}): Run {
	return {
		runId: `run-${++counter}`,
		moduleId: 'render',
		status: 'queued',
		priority: 'normal',
		parameters: {},
		createdAt: T0,
		updatedAt: T0,
		...overrides,
	};
}

function finished(completedAt: number, overrides: Partial<Run> = {}): Run {
	return makeRun({ status: 'completed', startedAt: completedAt - 1, completedAt, updatedAt: completedAt, ...overrides });
}

async function listIds(registry: MemoryRunRegistry, query: Parameters<MemoryRunRegistry['listRuns']>[0] = {}): Promise<string[]> {
	return (await registry.listRuns({ limit: 10_000, ...query })).runs.map((run) => run.runId);
}

describe('MemoryRunRegistry options', () => {
	it('defaults maxRuns to 10,000 and accepts Infinity', () => {
		expect(new MemoryRunRegistry().maxRuns).toBe(10_000);
		expect(new MemoryRunRegistry({}).maxRuns).toBe(10_000);
		expect(new MemoryRunRegistry({ maxRuns: 1 }).maxRuns).toBe(1);
		expect(new MemoryRunRegistry({ maxRuns: Number.POSITIVE_INFINITY }).maxRuns).toBe(Number.POSITIVE_INFINITY);
	});

	it.each([
		[0, 'number 0'],
		[-5, 'number -5'],
		[1.5, 'number 1.5'],
		[Number.NaN, 'number NaN'],
		['100', 'string "100"'],
		[null, 'null'],
	])('rejects maxRuns %s with a ValidationError stating expected and actual', (maxRuns, actual) => {
		const create = () => new MemoryRunRegistry({ maxRuns: maxRuns as number });
		expect(create).toThrow(ValidationError);
		expect(create).toThrow(`Expected \`maxRuns\` to be a positive integer or Infinity, got ${actual}`);
	});

	it('rejects options that are not an object', () => {
		expect(() => new MemoryRunRegistry(null as never)).toThrow('Expected `options` to be an object, got null');
	});
});

describe('MemoryRunRegistry input validation', () => {
	it.each([
		['a non-object', null, 'run'],
		['a missing runId', { ...makeRun(), runId: undefined }, 'run.runId'],
		['an empty runId', { ...makeRun(), runId: '' }, 'run.runId'],
		['a missing moduleId', { ...makeRun(), moduleId: undefined }, 'run.moduleId'],
		['an unknown status', { ...makeRun(), status: 'done' }, 'run.status'],
		['an unknown priority', { ...makeRun(), priority: 'urgent' }, 'run.priority'],
		['a non-finite createdAt', { ...makeRun(), createdAt: Number.NaN }, 'run.createdAt'],
		['a string updatedAt', { ...makeRun(), updatedAt: '2024-01-01' }, 'run.updatedAt'],
		['a numeric itemId', { ...makeRun(), itemId: 7 }, 'run.itemId'],
		['a null metadata', { ...makeRun(), metadata: null }, 'run.metadata'],
	])('addRun rejects a run with %s and stores nothing', async (_, run, field) => {
		const registry = new MemoryRunRegistry();
		await expect(registry.addRun(run as Run)).rejects.toMatchObject({ name: 'ValidationError', field });
		expect(registry.size).toBe(0);
		expect((await registry.listRuns()).runs).toEqual([]);
	});

	it('names the expected statuses in the message', async () => {
		await expect(new MemoryRunRegistry().addRun({ ...makeRun(), status: 'done' as RunStatus })).rejects.toThrow(
			"Expected `run.status` to be one of 'queued', 'running', 'completed', 'failed', 'cancelled', got string \"done\"",
		);
	});

	it('updateRun rejects a patch with a bad value and changes nothing', async () => {
		const registry = new MemoryRunRegistry();
		const run = makeRun();
		await registry.addRun(run);
		await expect(registry.updateRun(run.runId, { status: 'paused' as RunStatus })).rejects.toMatchObject({ name: 'ValidationError', field: 'patch.status' });
		await expect(registry.updateRun(run.runId, { progress: { percent: 5 }, startedAt: Number.NaN })).rejects.toMatchObject({
			name: 'ValidationError',
			field: 'patch.startedAt',
		});
		await expect(registry.updateRun(run.runId, { status: 'running' }, { ifStatus: 'waiting' as RunStatus })).rejects.toMatchObject({
			field: 'options.ifStatus',
		});
		expect(await registry.getRun(run.runId)).toEqual(run);
	});

	it.each([-1, Number.NaN, Number.POSITIVE_INFINITY, '60000', undefined])('cleanupOldRuns rejects maxAgeMs %s', async (maxAgeMs) => {
		await expect(new MemoryRunRegistry().cleanupOldRuns(maxAgeMs as number)).rejects.toMatchObject({ name: 'ValidationError', field: 'maxAgeMs' });
	});

	it('listRuns rejects filters of the wrong type', async () => {
		const registry = new MemoryRunRegistry();
		await expect(registry.listRuns({ status: 'done' as RunStatus })).rejects.toMatchObject({ field: 'query.status' });
		await expect(registry.listRuns({ status: ['queued', 'done' as RunStatus] })).rejects.toMatchObject({ field: 'query.status' });
		await expect(registry.listRuns({ moduleId: 5 as unknown as string })).rejects.toMatchObject({ field: 'query.moduleId' });
		await expect(registry.listRuns(null as never)).rejects.toMatchObject({ field: 'query' });
	});

	it('listRuns rejects cursors that are empty, tampered with or spelled differently', async () => {
		const registry = new MemoryRunRegistry();
		for (let index = 0; index < 3; index++) await registry.addRun(makeRun({ createdAt: T0 + index }));
		const { nextCursor } = await registry.listRuns({ limit: 1 });
		expect(nextCursor).toBeDefined();
		const decoded = Buffer.from(nextCursor as string, 'base64url').toString();
		const bad = ['', `${nextCursor}=`, Buffer.from(`${decoded}:1`).toString('base64url'), Buffer.from(`0${decoded}`).toString('base64url'), Buffer.from('x:1').toString('base64url')];
		for (const cursor of bad) await expect(registry.listRuns({ cursor })).rejects.toMatchObject({ name: 'ValidationError', field: 'query.cursor' });
	});
});

describe('MemoryRunRegistry behaviour', () => {
	it('lists runs with equal createdAt newest-added first', async () => {
		const registry = new MemoryRunRegistry();
		const runs = [makeRun(), makeRun(), makeRun()];
		for (const run of runs) await registry.addRun(run);
		expect(await listIds(registry)).toEqual([runs[2]?.runId, runs[1]?.runId, runs[0]?.runId]);
	});

	it('keeps every index in createdAt order when runs arrive out of order', async () => {
		const registry = new MemoryRunRegistry();
		const offsets = [50, 10, 40, 20, 30, 0, 60];
		const runs = offsets.map((offset, index) =>
			makeRun({ createdAt: T0 + offset, itemId: 'doc', ownerId: 'node-1', status: index % 2 === 0 ? 'queued' : 'running' }),
		);
		for (const run of runs) await registry.addRun(run);
		const expected = [...runs].sort((a, b) => b.createdAt - a.createdAt).map((run) => run.runId);
		expect(await listIds(registry)).toEqual(expected);
		expect(await listIds(registry, { itemId: 'doc' })).toEqual(expected);
		expect(await listIds(registry, { ownerId: 'node-1', moduleId: 'render' })).toEqual(expected);
		expect(await listIds(registry, { status: ['queued', 'running'] })).toEqual(expected);
		expect(await listIds(registry, { status: 'queued' })).toEqual([T0 + 60, T0 + 50, T0 + 40, T0 + 30].map((at) => runs.find((run) => run.createdAt === at)?.runId));
	});

	it('gives back every finite time exactly: whole, fractional, negative, tiny and far from now', async () => {
		// Times are stored compactly where they can be (see src/memory/compact-time.ts): none may change on the way.
		const time = fc.oneof(
			fc.double({ noNaN: true, noDefaultInfinity: true }),
			fc.integer({ min: -(2 ** 31) - 5, max: 2 ** 31 + 5 }),
			fc.integer({ min: -(2 ** 31), max: 2 ** 31 }).map((offset) => Date.now() + offset),
			fc.constantFrom(0, 5, -5, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE),
		);
		await fc.assert(
			fc.asyncProperty(time, time, time, time, async (createdAt, updatedAt, startedAt, completedAt) => {
				const registry = new MemoryRunRegistry();
				const run = makeRun({ status: 'completed', createdAt, updatedAt, startedAt, completedAt });
				await registry.addRun(run);
				const stored = await registry.getRun(run.runId);
				// toEqual compares numbers with Object.is: even -0 must come back as -0.
				expect([stored?.createdAt, stored?.updatedAt, stored?.startedAt, stored?.completedAt]).toEqual([createdAt, updatedAt, startedAt, completedAt]);
			}),
			{ numRuns: 2000 },
		);
	});

	it('keeps times set by updates exactly, and orders runs by createdAt across the 32-bit boundary', async () => {
		const registry = new MemoryRunRegistry();
		const now = Date.now();
		const created = [now + 2 ** 31 + 1, now - 2 ** 31 - 1, now, 5, now + 0.5, -1e15];
		const runs = created.map((createdAt) => makeRun({ createdAt, updatedAt: createdAt }));
		for (const run of runs) await registry.addRun(run);
		expect(await listIds(registry)).toEqual([...runs].sort((a, b) => b.createdAt - a.createdAt).map((run) => run.runId));
		const [first] = runs as [Run];
		await registry.updateRun(first.runId, { status: 'running', startedAt: first.createdAt + 0.25 });
		await registry.updateRun(first.runId, { status: 'completed', completedAt: first.createdAt - 3e12 });
		const stored = await registry.getRun(first.runId);
		expect([stored?.startedAt, stored?.completedAt]).toEqual([first.createdAt + 0.25, first.createdAt - 3e12]);
	});

	it('orders runs with times near now (stored as small distances) by createdAt when listing and by end when evicting', async () => {
		const registry = new MemoryRunRegistry({ maxRuns: 5 });
		const now = Date.now();
		// Out of creation order, with a tie (broken by the order added), and ends out of creation order.
		const spec = [
			{ created: now + 30, ended: now + 100 },
			{ created: now - 10, ended: now + 40 },
			{ created: now + 5, ended: now + 70 },
			{ created: now, ended: now + 10 },
			{ created: now - 10, ended: now + 55 },
		];
		const runs = spec.map(({ created, ended }) => finished(ended, { createdAt: created, updatedAt: ended }));
		for (const run of runs) await registry.addRun(run);
		const byCreationNewestFirst = [0, 2, 3, 4, 1].map((index) => runs[index]!.runId);
		expect(await listIds(registry)).toEqual(byCreationNewestFirst);
		expect(await listIds(registry, { status: 'completed' })).toEqual(byCreationNewestFirst);
		expect(await listIds(registry, { moduleId: 'render' })).toEqual(byCreationNewestFirst);

		// Each add evicts the run that ended first: runs 3 (now + 10), then 1 (now + 40), then 4 (now + 55).
		for (let index = 0; index < 3; index++) await registry.addRun(makeRun({ createdAt: now + 200 + index, updatedAt: now + 200 + index }));
		expect(await Promise.all(runs.map(async (run) => (await registry.getRun(run.runId)) !== undefined))).toEqual([true, false, true, false, false]);
	});

	it('lists nothing for an empty status list', async () => {
		const registry = new MemoryRunRegistry();
		await registry.addRun(makeRun());
		expect(await registry.listRuns({ status: [] })).toEqual({ runs: [] });
	});

	it('never moves updatedAt back, even below a stored updatedAt in the future', async () => {
		const registry = new MemoryRunRegistry();
		const future = Date.now() + 60_000;
		const run = makeRun({ updatedAt: future });
		await registry.addRun(run);
		expect((await registry.updateRun(run.runId, { progress: { percent: 1 } }))?.updatedAt).toBe(future);
	});

	it('lists a run once after its owner changes away and back', async () => {
		const registry = new MemoryRunRegistry();
		const run = makeRun({ ownerId: 'a' });
		const other = makeRun({ ownerId: 'a', createdAt: T0 - 1 });
		await registry.addRun(run);
		await registry.addRun(other);
		await registry.updateRun(run.runId, { ownerId: 'b' });
		await registry.updateRun(run.runId, { ownerId: 'a' });
		await registry.updateRun(run.runId, { ownerId: 'a' });
		expect(await listIds(registry, { ownerId: 'a' })).toEqual([run.runId, other.runId]);
		expect(await listIds(registry, { ownerId: 'b' })).toEqual([]);
	});

	it('clones Dates, Maps and cycles, and keeps values structuredClone refuses by reference', async () => {
		const registry = new MemoryRunRegistry();
		const cyclic: Record<string, unknown> = { name: 'loop' };
		cyclic.self = cyclic;
		const withFunction = { callback: () => 1, label: 'fn' };
		const run = makeRun({ parameters: { at: new Date(5), lookup: new Map([['k', 1]]) }, result: cyclic, metadata: withFunction });
		await registry.addRun(run);
		const stored = (await registry.getRun(run.runId)) as Run;
		expect(stored.parameters).toEqual({ at: new Date(5), lookup: new Map([['k', 1]]) });
		expect(stored.parameters).not.toBe(run.parameters);
		expect((stored.parameters as { at: unknown }).at).toBeInstanceOf(Date);
		const result = stored.result as Record<string, unknown>;
		expect(result).not.toBe(cyclic);
		expect(result.self).toBe(result);
		expect(stored.metadata).toBe(withFunction);
	});

	it('copies an own __proto__ key without touching any prototype', async () => {
		const registry = new MemoryRunRegistry();
		const parameters = JSON.parse('{"__proto__": {"polluted": true}, "plain": 1}') as Record<string, unknown>;
		const run = makeRun({ parameters });
		await registry.addRun(run);
		const stored = (await registry.getRun(run.runId)) as Run;
		expect(Object.getPrototypeOf(stored.parameters)).toBe(Object.prototype);
		expect(Object.keys(stored.parameters as object)).toEqual(['__proto__', 'plain']);
		expect(({} as Record<string, unknown>).polluted).toBeUndefined();
	});

	it('counts stored runs in size through add, delete and cleanup', async () => {
		const registry = new MemoryRunRegistry();
		await registry.addRun(makeRun());
		const old = finished(Date.now() - 10_000);
		await registry.addRun(old);
		await registry.addRun(finished(Date.now() - 20_000));
		expect(registry.size).toBe(3);
		expect(await registry.deleteRun(old.runId)).toBe(true);
		expect(registry.size).toBe(2);
		expect(await registry.cleanupOldRuns(1_000)).toBe(1);
		expect(registry.size).toBe(1);
	});
});

describe('MemoryRunRegistry maxRuns', () => {
	it('evicts the run that finished longest ago, not the one created first', async () => {
		const registry = new MemoryRunRegistry({ maxRuns: 3 });
		const a = finished(T0 + 300, { createdAt: T0 + 1 });
		const b = finished(T0 + 100, { createdAt: T0 + 2 });
		const c = finished(T0 + 200, { createdAt: T0 + 3 });
		for (const run of [a, b, c]) await registry.addRun(run);
		const d = makeRun({ createdAt: T0 + 4 });
		await registry.addRun(d);
		expect(await listIds(registry)).toEqual([d.runId, c.runId, a.runId]);
		const e = makeRun({ createdAt: T0 + 5 });
		await registry.addRun(e);
		expect(await listIds(registry)).toEqual([e.runId, d.runId, a.runId]);
		expect(registry.size).toBe(3);
	});

	it('evicts in the order runs became terminal through updateRun', async () => {
		const registry = new MemoryRunRegistry({ maxRuns: 3 });
		const runs = [makeRun({ createdAt: T0 + 1 }), makeRun({ createdAt: T0 + 2 }), makeRun({ createdAt: T0 + 3 })];
		for (const run of runs) await registry.addRun(run);
		const [a, b, c] = runs.map((run) => run.runId) as [string, string, string];
		await registry.updateRun(c, { status: 'cancelled', completedAt: T0 + 10 });
		await registry.updateRun(a, { status: 'failed', completedAt: T0 + 20 });
		await registry.updateRun(b, { status: 'running' });
		await registry.addRun(makeRun({ createdAt: T0 + 4, moduleId: 'other' }));
		expect(await registry.getRun(c)).toBeUndefined();
		await registry.addRun(makeRun({ createdAt: T0 + 5, moduleId: 'other' }));
		expect(await registry.getRun(a)).toBeUndefined();
		expect(await listIds(registry, { moduleId: 'render' })).toEqual([b]);
		expect(await listIds(registry, { status: ['cancelled', 'failed'] })).toEqual([]);
		expect(registry.size).toBe(3);
	});

	it('never evicts an active run: grows past maxRuns, then comes back as runs finish', async () => {
		const registry = new MemoryRunRegistry({ maxRuns: 2 });
		const active = Array.from({ length: 4 }, (_, index) => makeRun({ createdAt: T0 + index }));
		for (const run of active) await registry.addRun(run);
		expect(registry.size).toBe(4);
		expect(await listIds(registry, { status: 'queued' })).toHaveLength(4);
		for (const run of active.slice(0, 3)) await registry.updateRun(run.runId, { status: 'cancelled' });
		expect(registry.size).toBe(4);
		const next = makeRun({ createdAt: T0 + 10 });
		await registry.addRun(next);
		// Three finished runs go so that the new one fits beside the one still active.
		expect(registry.size).toBe(2);
		expect(await listIds(registry)).toEqual([next.runId, active[3]?.runId]);
	});

	it('keeps size at maxRuns plus active runs under a steady stream of 50,000 runs', async () => {
		const maxRuns = 1_000;
		const registry = new MemoryRunRegistry({ maxRuns });
		const inFlight: string[] = [];
		let worst = 0;
		const ids: string[] = [];
		for (let index = 0; index < 50_000; index++) {
			const run = makeRun({ createdAt: T0 + index, moduleId: `module-${index % 7}`, itemId: `item-${index % 101}`, ownerId: `owner-${index % 3}` });
			ids.push(run.runId);
			await registry.addRun(run);
			await registry.updateRun(run.runId, { status: 'running' }, { ifStatus: 'queued' });
			inFlight.push(run.runId);
			// Up to 25 runs in flight; each finishes 25 runs later.
			if (inFlight.length > 25) await registry.updateRun(inFlight.shift() as string, { status: 'completed', progress: { percent: 100 } });
			worst = Math.max(worst, registry.size - maxRuns - inFlight.length);
		}
		expect(worst).toBeLessThanOrEqual(0);
		for (const runId of inFlight.splice(0)) await registry.updateRun(runId, { status: 'completed' });
		expect(registry.size).toBe(maxRuns);
		expect(await listIds(registry)).toEqual(ids.slice(-maxRuns).reverse());
		expect(await listIds(registry, { status: 'completed' })).toHaveLength(maxRuns);
		expect(await listIds(registry, { status: ['queued', 'running'] })).toEqual([]);
		expect(await listIds(registry, { moduleId: 'module-3' })).toEqual(ids.slice(-maxRuns).reverse().filter((_, index) => (49_999 - index) % 7 === 3));
		expect(await listIds(registry, { itemId: 'item-0', ownerId: 'owner-0' })).toEqual(
			ids.slice(-maxRuns).reverse().filter((_, index) => (49_999 - index) % 101 === 0 && (49_999 - index) % 3 === 0),
		);
	});
});

describe('MemoryRunRegistry indexes', () => {
	it('lists the 100 runs of one status among 200,000 exactly, newest first', async () => {
		const registry = new MemoryRunRegistry({ maxRuns: Number.POSITIVE_INFINITY });
		const running: string[] = [];
		for (let index = 0; index < 200_000; index++) {
			const active = index % 2_000 === 1_234;
			const run = active
				? makeRun({ status: 'running', createdAt: T0 + index, startedAt: T0 + index, moduleId: index % 4_000 === 1_234 ? 'a' : 'b' })
				: makeRun({ status: 'completed', createdAt: T0 + index, completedAt: T0 + index, moduleId: 'a' });
			await registry.addRun(run);
			if (active) running.unshift(run.runId);
		}
		expect(registry.size).toBe(200_000);
		const page = await registry.listRuns({ status: 'running' });
		expect(page.runs.map((run) => run.runId)).toEqual(running);
		expect(page.nextCursor).toBeUndefined();
		const firstHalf = await registry.listRuns({ status: 'running', limit: 50 });
		const secondHalf = await registry.listRuns({ status: 'running', limit: 50, cursor: firstHalf.nextCursor as string });
		expect([...firstHalf.runs, ...secondHalf.runs].map((run) => run.runId)).toEqual(running);
		expect(secondHalf.nextCursor).toBeUndefined();
		expect((await registry.listRuns({ status: 'running', moduleId: 'b' })).runs.map((run) => run.runId)).toEqual(running.filter((_, index) => index % 2 === 0));
		expect(await registry.cleanupOldRuns(0)).toBe(199_900);
		expect(registry.size).toBe(100);
	});

	it('retains well under 1 KB per finished run', async () => {
		setFlagsFromString('--expose-gc');
		const gc = runInNewContext('gc') as () => void;
		const count = 20_000;
		gc();
		const before = process.memoryUsage().heapUsed;
		const registry = new MemoryRunRegistry({ maxRuns: count });
		for (let index = 0; index < count; index++) {
			await registry.addRun(
				makeRun({
					runId: `run-${index.toString(36).padStart(21, '0')}`,
					status: 'completed',
					itemId: `chat-${Math.floor(index / 10)}`,
					ownerId: 'node-1',
					progress: { percent: 100 },
					createdAt: T0 + index,
					startedAt: T0 + index,
					completedAt: T0 + index + 5,
					updatedAt: T0 + index + 5,
					parameters: undefined,
				}),
			);
		}
		gc();
		const perRun = (process.memoryUsage().heapUsed - before) / count;
		expect(registry.size).toBe(count);
		expect(perRun).toBeLessThan(1_024);
	});
});

describe('OrderedIndex', () => {
	interface Item {
		readonly key: number;
		live: boolean;
	}
	const create = () => new OrderedIndex<Item>((a, b) => a.key - b.key, (item) => item.live);
	const keys = (index: OrderedIndex<Item>) => {
		const result: number[] = [];
		for (let position = index.start; position < index.end; position++) if (index.holds(index.at(position))) result.push(index.at(position).key);
		return result;
	};

	it('keeps items sorted whatever the insertion order, and finds positions by binary search', () => {
		const index = create();
		for (const key of [5, 1, 9, 3, 7, 2]) index.insert({ key, live: true });
		expect(keys(index)).toEqual([1, 2, 3, 5, 7, 9]);
		expect(index.lowerBound({ key: 4, live: true })).toBe(3);
		expect(index.lowerBound({ key: 10, live: true })).toBe(6);
	});

	it('compacts once dead items outnumber live ones, so it never retains more than twice its size', () => {
		const index = create();
		const items = Array.from({ length: 1_000 }, (_, key) => ({ key, live: true }));
		for (const item of items) index.insert(item);
		for (const item of items.slice(0, 700)) {
			item.live = false;
			index.markDead();
			expect(index.retained).toBeLessThanOrEqual(2 * index.size);
		}
		expect(index.size).toBe(300);
		expect(index.retained).toBeLessThan(700);
		expect(keys(index)).toEqual(items.slice(700).map((item) => item.key));
	});

	it('counts a dead item live again on re-insert without holding it twice', () => {
		const index = create();
		const items = Array.from({ length: 5 }, (_, key) => ({ key, live: true }));
		for (const item of items) index.insert(item);
		const item = items[2] as Item;
		item.live = false;
		index.markDead();
		expect(index.size).toBe(4);
		item.live = true;
		index.insert(item);
		expect(index.size).toBe(5);
		expect(index.retained).toBe(5);
	});

	it('serves first() as a queue, skipping dead items and releasing them', () => {
		const index = create();
		const items = Array.from({ length: 100 }, (_, key) => ({ key, live: true }));
		for (const item of items) index.insert(item);
		for (let expected = 0; expected < 100; expected++) {
			const first = index.first() as Item;
			expect(first.key).toBe(expected);
			first.live = false;
			index.markDead();
			expect(index.retained).toBeLessThanOrEqual(2 * index.size);
		}
		expect(index.first()).toBeUndefined();
		expect(index.size).toBe(0);
		expect(index.retained).toBe(0);
	});
});
