/**
 * The conformance suite every {@link RunRegistry} adapter must pass: one suite, every adapter.
 * It takes the test runner's functions as arguments, so it imports no test framework and runs
 * under vitest, jest, or anything with the same `describe`/`it`/`expect` shape.
 */
import type { RunQuery, RunRegistry, RunWrite, RunWriteResult } from '../registry.js';
import type { Run, RunPatch, RunStatus } from '../run.js';

/** The matchers the suite uses, as vitest's and jest's `expect(value)` provide them. */
export interface ConformanceAssertion {
	toBe(expected: unknown): void;
	toEqual(expected: unknown): void;
	toMatchObject(expected: object): void;
	toBeUndefined(): void;
	toBeDefined(): void;
	toHaveLength(length: number): void;
	toBeGreaterThanOrEqual(expected: number): void;
	toBeLessThanOrEqual(expected: number): void;
	readonly not: ConformanceAssertion;
	readonly rejects: ConformancePromiseAssertion;
}

/** The matchers the suite awaits on `expect(promise).rejects`. */
export interface ConformancePromiseAssertion {
	toMatchObject(expected: object): PromiseLike<unknown>;
}

/**
 * The parts of a test runner the suite needs. Vitest's and jest's `{ describe, it, expect }`
 * satisfy it as they are.
 */
export interface ConformanceRunner {
	readonly describe: (name: string, body: () => void) => void;
	readonly it: (name: string, test: () => Promise<void>) => void;
	readonly expect: (actual: unknown) => ConformanceAssertion;
}

/** Options for {@link describeRunRegistryConformance}. */
export interface ConformanceOptions {
	/**
	 * Names the adapter in the suite's title.
	 * @default 'RunRegistry'
	 */
	readonly name?: string;

	/**
	 * The adapter implements `getRuns`: its tests are included.
	 * @default false
	 */
	readonly batchRead?: boolean;

	/**
	 * The adapter implements owner leases (`heartbeat`, `releaseOwner`, `reapOrphans`): their tests are included.
	 * @default false
	 */
	readonly leases?: boolean;
}

// A fixed time far from now: ordering tests set their own createdAt values around it.
const T0 = 1_700_000_000_000;
const HOUR = 3_600_000;

type MutableRun = { -readonly [K in keyof Run]: Run[K] };

const LEGAL: ReadonlyArray<readonly [RunStatus, RunStatus]> = [
	['queued', 'queued'],
	['queued', 'running'],
	['queued', 'cancelled'],
	['queued', 'failed'],
	['running', 'running'],
	['running', 'completed'],
	['running', 'failed'],
	['running', 'cancelled'],
];
const ACTIVE_ILLEGAL: ReadonlyArray<readonly [RunStatus, RunStatus]> = [
	['queued', 'completed'],
	['running', 'queued'],
];
const STATUSES: readonly RunStatus[] = ['queued', 'running', 'completed', 'failed', 'cancelled'];
const TERMINAL: readonly RunStatus[] = ['completed', 'failed', 'cancelled'];

/**
 * Declares the conformance suite for a {@link RunRegistry} adapter.
 *
 * `createRegistry` is called once per test and must return an empty registry that shares no
 * runs with the others (for a shared store, use a fresh key prefix or database per call). Each
 * test ends with `registry.close?.()`. Errors are matched by `name`, not class, so that an
 * adapter bundled with its own copy of runledger passes too.
 *
 * @example
 * ```ts
 * import { describe, it, expect } from 'vitest';
 * import { describeRunRegistryConformance } from 'runledger/testing';
 *
 * describeRunRegistryConformance({ describe, it, expect }, () => new MyRegistry(), { name: 'MyRegistry' });
 * ```
 */
export function describeRunRegistryConformance(
	runner: ConformanceRunner,
	createRegistry: () => RunRegistry | Promise<RunRegistry>,
	options: ConformanceOptions = {},
): void {
	const { describe, it, expect } = runner;
	// Ids unique to this suite instance, so that no two tests ever touch the same run.
	const namespace = `rl-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
	let counter = 0;
	const unique = (label: string): string => `${namespace}-${label}-${++counter}`;

	/** A valid queued run with fresh ids; `overrides` replace any field. */
	const makeRun = (overrides: Partial<Run> = {}): Run => ({
		runId: unique('run'),
		moduleId: unique('module'),
		status: 'queued',
		priority: 'normal',
		parameters: { input: 'value' },
		createdAt: T0,
		updatedAt: T0,
		...overrides,
	});

	// Each test gets its own registry, closed however the test ends.
	const test = (name: string, body: (registry: RunRegistry) => Promise<void>): void => {
		it(name, async () => {
			const registry = await createRegistry();
			try {
				await body(registry);
			} finally {
				await registry.close?.();
			}
		});
	};

	const ids = (runs: readonly Run[]): string[] => runs.map((run) => run.runId);

	// Every page of a query, followed by cursor.
	const allPages = async (registry: RunRegistry, query: RunQuery): Promise<Run[][]> => {
		const pages: Run[][] = [];
		let cursor: string | undefined;
		do {
			const page = await registry.listRuns(cursor === undefined ? query : { ...query, cursor });
			pages.push(page.runs);
			cursor = page.nextCursor;
		} while (cursor !== undefined && pages.length < 1_000);
		return pages;
	};

	const expectRejection = async (promise: Promise<unknown>, name: string): Promise<void> => {
		await expect(promise).rejects.toMatchObject({ name });
	};

	// A run in `status`, with the fields that status implies.
	const runIn = (status: RunStatus, overrides: Partial<Run> = {}): Run => {
		const run: MutableRun = { ...makeRun(overrides), status };
		if (status !== 'queued') run.startedAt ??= T0 + 1;
		if (status === 'completed') run.result ??= { ok: true };
		if (status === 'failed') run.error ??= { name: 'Error', message: 'boom' };
		if (TERMINAL.includes(status)) run.completedAt ??= T0 + 2;
		return run;
	};

	// A patch that moves a run to `to` (or only reports progress when it stays).
	const patchTo = (from: RunStatus, to: RunStatus): RunPatch => {
		if (from === to) return { status: to, progress: { percent: 40, message: 'working' } };
		const patch: RunPatch = { status: to };
		if (to === 'running') patch.startedAt = T0 + 10;
		if (to === 'completed') patch.result = { rows: 3 };
		if (to === 'failed') patch.error = { name: 'TypeError', message: 'bad input', code: 'E_INPUT' };
		if (TERMINAL.includes(to)) patch.completedAt = T0 + 20;
		return patch;
	};

	describe(`${options.name ?? 'RunRegistry'} conformance`, () => {
		describe('addRun and getRun', () => {
			test('getRun returns every field of an active run as added', async (registry) => {
				const run = makeRun({
					moduleName: 'Video render',
					itemId: unique('item'),
					ownerId: unique('owner'),
					status: 'running',
					priority: 'high',
					parameters: { text: 'hi', count: 3, ratio: 0.5, on: true, none: null, list: [1, 'two', { three: 3 }], nested: { deep: { x: [] } } },
					progress: { percent: 25, message: 'encoding' },
					createdAt: T0,
					updatedAt: T0 + 5,
					startedAt: T0 + 1,
					metadata: { requestId: 'req-1', tags: ['a', 'b'] },
				});
				await registry.addRun(run);
				expect(await registry.getRun(run.runId)).toEqual(run);
			});

			test('getRun returns every field of finished runs as added', async (registry) => {
				const completed = runIn('completed', { result: { url: 'https://example.com/out.mp4', sizes: [1, 2] }, progress: { percent: 100 } });
				const failed = runIn('failed', {
					error: { name: 'RangeError', message: 'too big', stack: 'RangeError: too big\n    at render', code: 'E_SIZE' },
				});
				await registry.addRun(completed);
				await registry.addRun(failed);
				expect(await registry.getRun(completed.runId)).toEqual(completed);
				expect(await registry.getRun(failed.runId)).toEqual(failed);
			});

			test('getRun returns a run with only the required fields as added', async (registry) => {
				const run: Run = { runId: unique('run'), moduleId: unique('module'), status: 'queued', priority: 'low', parameters: [], createdAt: T0, updatedAt: T0 };
				await registry.addRun(run);
				expect(await registry.getRun(run.runId)).toEqual(run);
			});

			test('getRun resolves undefined for an unknown id', async (registry) => {
				expect(await registry.getRun(unique('missing'))).toBeUndefined();
			});

			test('addRun rejects a duplicate id with RunExistsError and keeps the first run', async (registry) => {
				const first = makeRun();
				await registry.addRun(first);
				await expectRejection(registry.addRun({ ...makeRun(), runId: first.runId, status: 'running' }), 'RunExistsError');
				expect(await registry.getRun(first.runId)).toEqual(first);
			});
		});

		describe('updateRun transitions', () => {
			for (const [from, to] of LEGAL) {
				const name = from === to ? `updateRun patches a ${from} run that stays ${from}` : `updateRun moves a ${from} run to ${to}`;
				test(name, async (registry) => {
					const run = runIn(from);
					await registry.addRun(run);
					const patch = patchTo(from, to);
					const updated = await registry.updateRun(run.runId, patch);
					const { updatedAt: _updatedAt, ...unchanged } = run;
					expect(updated).toMatchObject({ ...unchanged, ...patch, status: to });
					expect(await registry.getRun(run.runId)).toEqual(updated);
				});
			}

			for (const [from, to] of ACTIVE_ILLEGAL) {
				test(`updateRun refuses ${from} → ${to} with IllegalTransitionError and changes nothing`, async (registry) => {
					const run = runIn(from);
					await registry.addRun(run);
					await expectRejection(registry.updateRun(run.runId, patchTo(from, to)), 'IllegalTransitionError');
					expect(await registry.getRun(run.runId)).toEqual(run);
				});
			}

			for (const from of TERMINAL) {
				for (const to of STATUSES) {
					test(`updateRun refuses ${from} → ${to} with IllegalTransitionError and changes nothing`, async (registry) => {
						const run = runIn(from);
						await registry.addRun(run);
						await expectRejection(registry.updateRun(run.runId, { ...patchTo('running', to), status: to }), 'IllegalTransitionError');
						expect(await registry.getRun(run.runId)).toEqual(run);
					});
				}
				test(`updateRun refuses any patch of a ${from} run, even without a status`, async (registry) => {
					const run = runIn(from);
					await registry.addRun(run);
					await expectRejection(registry.updateRun(run.runId, { progress: { percent: 99 }, metadata: { late: true } }), 'IllegalTransitionError');
					expect(await registry.getRun(run.runId)).toEqual(run);
				});
			}

			test('updateRun applies every patchable field at once', async (registry) => {
				const run = runIn('running', { progress: { percent: 10 } });
				await registry.addRun(run);
				const patch: RunPatch = {
					status: 'failed',
					priority: 'critical',
					progress: { percent: 80, message: 'almost' },
					result: { partial: [1, 2] },
					error: { name: 'Error', message: 'disk full', code: 'ENOSPC' },
					startedAt: T0 + 3,
					completedAt: T0 + 9,
					ownerId: unique('owner'),
					metadata: { attempt: 2 },
				};
				const updated = await registry.updateRun(run.runId, patch);
				expect(updated).toEqual({ ...run, ...patch, updatedAt: updated?.updatedAt });
				expect(await registry.getRun(run.runId)).toEqual(updated);
			});

			test('updateRun keeps the fields a patch leaves out', async (registry) => {
				const run = runIn('running', { progress: { percent: 10, message: 'start' }, metadata: { a: 1 }, ownerId: unique('owner') });
				await registry.addRun(run);
				const updated = await registry.updateRun(run.runId, { metadata: { b: 2 } });
				expect(updated).toEqual({ ...run, metadata: { b: 2 }, updatedAt: updated?.updatedAt });
			});

			test('updateRun never changes runId, moduleId, moduleName, itemId, parameters or createdAt', async (registry) => {
				const run = makeRun({ moduleName: 'Name', itemId: unique('item') });
				await registry.addRun(run);
				const sneaky = {
					progress: { percent: 5 },
					runId: unique('other'),
					moduleId: 'other-module',
					moduleName: 'Other',
					itemId: 'other-item',
					parameters: { replaced: true },
					createdAt: T0 + 99_999,
				} as RunPatch;
				const updated = await registry.updateRun(run.runId, sneaky);
				const { updatedAt: _updatedAt, ...unchanged } = run;
				expect(updated).toMatchObject({ ...unchanged, progress: { percent: 5 } });
				expect(await registry.getRun(run.runId)).toEqual(updated);
				expect(await registry.getRun((sneaky as { runId: string }).runId)).toBeUndefined();
			});

			test('updateRun resolves undefined for an unknown run', async (registry) => {
				expect(await registry.updateRun(unique('missing'), { status: 'running' })).toBeUndefined();
				expect(await registry.updateRun(unique('missing'), { status: 'running' }, { ifStatus: 'queued' })).toBeUndefined();
				expect(await registry.getRun(unique('missing'))).toBeUndefined();
			});
		});

		describe('updateRun compare-and-set', () => {
			test('updateRun applies the patch when the status is ifStatus', async (registry) => {
				const run = makeRun();
				await registry.addRun(run);
				const updated = await registry.updateRun(run.runId, { status: 'running', startedAt: T0 + 1 }, { ifStatus: 'queued' });
				expect(updated).toMatchObject({ runId: run.runId, status: 'running', startedAt: T0 + 1 });
				expect((await registry.getRun(run.runId))?.status).toBe('running');
			});

			test('updateRun applies the patch when the status is one of ifStatus', async (registry) => {
				const run = runIn('running');
				await registry.addRun(run);
				const updated = await registry.updateRun(run.runId, { status: 'cancelled' }, { ifStatus: ['queued', 'running'] });
				expect(updated?.status).toBe('cancelled');
				expect((await registry.getRun(run.runId))?.status).toBe('cancelled');
			});

			test('updateRun resolves undefined and changes nothing when the status is not ifStatus', async (registry) => {
				const run = runIn('running');
				await registry.addRun(run);
				expect(await registry.updateRun(run.runId, { status: 'cancelled' }, { ifStatus: 'queued' })).toBeUndefined();
				expect(await registry.updateRun(run.runId, { progress: { percent: 1 } }, { ifStatus: ['queued', 'completed'] })).toBeUndefined();
				expect(await registry.getRun(run.runId)).toEqual(run);
			});

			test('updateRun checks ifStatus before legality: a terminal run outside ifStatus resolves undefined', async (registry) => {
				const run = runIn('completed');
				await registry.addRun(run);
				expect(await registry.updateRun(run.runId, { status: 'running' }, { ifStatus: 'queued' })).toBeUndefined();
				expect(await registry.getRun(run.runId)).toEqual(run);
			});

			test('updateRun still refuses an illegal change when ifStatus matches', async (registry) => {
				const run = runIn('completed');
				await registry.addRun(run);
				await expectRejection(registry.updateRun(run.runId, { status: 'running' }, { ifStatus: 'completed' }), 'IllegalTransitionError');
				expect(await registry.getRun(run.runId)).toEqual(run);
			});
		});

		describe('updatedAt', () => {
			test('updateRun stamps updatedAt with the current time', async (registry) => {
				const run = makeRun({ updatedAt: T0 });
				await registry.addRun(run);
				const before = Date.now();
				const updated = await registry.updateRun(run.runId, { progress: { percent: 1 } });
				const after = Date.now();
				expect(updated?.updatedAt).toBeGreaterThanOrEqual(before);
				expect(updated?.updatedAt).toBeLessThanOrEqual(after);
				expect((await registry.getRun(run.runId))?.updatedAt).toBe(updated?.updatedAt);
			});

			test('updatedAt never decreases over successive updates', async (registry) => {
				const run = makeRun();
				await registry.addRun(run);
				let previous = run.updatedAt;
				for (let percent = 1; percent <= 30; percent++) {
					const updated = await registry.updateRun(run.runId, { progress: { percent } });
					expect(updated?.updatedAt).toBeGreaterThanOrEqual(previous);
					previous = updated?.updatedAt ?? Number.NaN;
				}
				expect(await registry.getRun(run.runId)).toMatchObject({ progress: { percent: 30 }, updatedAt: previous });
			});
		});

		describe('listRuns', () => {
			test('listRuns on an empty registry returns no runs and no cursor', async (registry) => {
				const page = await registry.listRuns();
				expect(page.runs).toEqual([]);
				expect(page.nextCursor).toBeUndefined();
			});

			test('listRuns returns runs newest first by createdAt, whatever the order they were added in', async (registry) => {
				const offsets = [30, 10, 40, 0, 20];
				const runs = offsets.map((offset) => makeRun({ createdAt: T0 + offset }));
				for (const run of runs) await registry.addRun(run);
				const page = await registry.listRuns();
				expect(ids(page.runs)).toEqual([runs[2], runs[0], runs[4], runs[1], runs[3]].map((run) => run?.runId));
				expect(page.runs[0]).toEqual(runs[2]);
				expect(page.nextCursor).toBeUndefined();
			});

			// Twelve runs across statuses, modules, items and owners; r<i> has createdAt T0 + i.
			const fixture = async (registry: RunRegistry) => {
				const m1 = unique('m1');
				const m2 = unique('m2');
				const i1 = unique('i1');
				const i2 = unique('i2');
				const o1 = unique('o1');
				const o2 = unique('o2');
				const table: Array<[RunStatus, string, string | undefined, string | undefined]> = [
					['queued', m1, i1, o1],
					['running', m1, i1, o2],
					['completed', m2, i1, o1],
					['failed', m2, i2, undefined],
					['queued', m2, undefined, o2],
					['running', m1, i2, o1],
					['completed', m1, undefined, undefined],
					['cancelled', m2, i1, o2],
					['queued', m1, i2, o1],
					['running', m2, i2, o1],
					['completed', m1, i1, o1],
					['queued', m2, i1, undefined],
				];
				const r: string[] = [];
				for (const [index, [status, moduleId, itemId, ownerId]] of table.entries()) {
					const overrides: MutableRun = { ...makeRun({ moduleId, createdAt: T0 + index }) };
					if (itemId !== undefined) overrides.itemId = itemId;
					if (ownerId !== undefined) overrides.ownerId = ownerId;
					const run = runIn(status, overrides);
					await registry.addRun(run);
					r.push(run.runId);
				}
				const list = async (query: RunQuery) => ids((await registry.listRuns(query)).runs);
				return { r, m1, m2, i1, i2, o1, o2, list };
			};

			test('listRuns filters by one status', async (registry) => {
				const { r, list } = await fixture(registry);
				expect(await list({ status: 'queued' })).toEqual([r[11], r[8], r[4], r[0]]);
				expect(await list({ status: 'cancelled' })).toEqual([r[7]]);
			});

			test('listRuns filters by several statuses', async (registry) => {
				const { r, list } = await fixture(registry);
				expect(await list({ status: ['running', 'completed'] })).toEqual([r[10], r[9], r[6], r[5], r[2], r[1]]);
				expect(await list({ status: ['failed', 'cancelled', 'failed'] })).toEqual([r[7], r[3]]);
			});

			test('listRuns filters by moduleId', async (registry) => {
				const { r, m1, list } = await fixture(registry);
				expect(await list({ moduleId: m1 })).toEqual([r[10], r[8], r[6], r[5], r[1], r[0]]);
				expect(await list({ moduleId: unique('no-such-module') })).toEqual([]);
			});

			test('listRuns filters by itemId', async (registry) => {
				const { r, i1, i2, list } = await fixture(registry);
				expect(await list({ itemId: i1 })).toEqual([r[11], r[10], r[7], r[2], r[1], r[0]]);
				expect(await list({ itemId: i2 })).toEqual([r[9], r[8], r[5], r[3]]);
			});

			test('listRuns filters by ownerId', async (registry) => {
				const { r, o1, o2, list } = await fixture(registry);
				expect(await list({ ownerId: o1 })).toEqual([r[10], r[9], r[8], r[5], r[2], r[0]]);
				expect(await list({ ownerId: o2 })).toEqual([r[7], r[4], r[1]]);
			});

			test('listRuns combines filters with AND', async (registry) => {
				const { r, m1, m2, i1, i2, o1, list } = await fixture(registry);
				expect(await list({ status: ['queued', 'running'], moduleId: m1, ownerId: o1 })).toEqual([r[8], r[5], r[0]]);
				expect(await list({ status: ['queued', 'running'], moduleId: m1, ownerId: o1, itemId: i2 })).toEqual([r[8], r[5]]);
				expect(await list({ status: 'completed', moduleId: m2, itemId: i1 })).toEqual([r[2]]);
				expect(await list({ status: 'failed', moduleId: m1 })).toEqual([]);
				expect(await list({ itemId: i1, ownerId: unique('nobody') })).toEqual([]);
			});

			test('listRuns follows status changes, listing a run once under its current status', async (registry) => {
				const a = makeRun({ createdAt: T0 + 1 });
				const b = makeRun({ createdAt: T0 + 2 });
				await registry.addRun(a);
				await registry.addRun(b);
				// Runs in other statuses, so that the statuses asked for are a small part of the store.
				for (let index = 0; index < 5; index++) await registry.addRun(runIn('cancelled', { createdAt: T0 + 3 + index }));
				await registry.updateRun(a.runId, { status: 'running' });
				const list = async (status: RunStatus | RunStatus[]) => ids((await registry.listRuns({ status })).runs);
				expect(await list('queued')).toEqual([b.runId]);
				expect(await list('running')).toEqual([a.runId]);
				expect(await list(['queued', 'running'])).toEqual([b.runId, a.runId]);
				await registry.updateRun(a.runId, { status: 'completed' });
				expect(await list('running')).toEqual([]);
				expect(await list(['running', 'completed', 'queued'])).toEqual([b.runId, a.runId]);
				expect(await list(['completed', 'cancelled'])).toHaveLength(6);
			});

			test('listRuns follows ownerId changes', async (registry) => {
				const o1 = unique('owner');
				const o2 = unique('owner');
				const run = runIn('running', { ownerId: o1 });
				await registry.addRun(run);
				const list = async (ownerId: string) => ids((await registry.listRuns({ ownerId })).runs);
				await registry.updateRun(run.runId, { ownerId: o2 });
				expect(await list(o1)).toEqual([]);
				expect(await list(o2)).toEqual([run.runId]);
				await registry.updateRun(run.runId, { ownerId: o1 });
				expect(await list(o1)).toEqual([run.runId]);
				expect(await list(o2)).toEqual([]);
			});

			test('listRuns returns at most limit runs, with a cursor only when more remain', async (registry) => {
				const runs = Array.from({ length: 10 }, (_, index) => makeRun({ createdAt: T0 + index }));
				for (const run of runs) await registry.addRun(run);
				const three = await registry.listRuns({ limit: 3 });
				expect(ids(three.runs)).toEqual([runs[9], runs[8], runs[7]].map((run) => run?.runId));
				expect(three.nextCursor).toBeDefined();
				const ten = await registry.listRuns({ limit: 10 });
				expect(ten.runs).toHaveLength(10);
				expect(ten.nextCursor).toBeUndefined();
				const most = await registry.listRuns({ limit: 10_000 });
				expect(most.runs).toHaveLength(10);
			});

			test('listRuns returns 100 runs by default', async (registry) => {
				for (let index = 0; index < 105; index++) await registry.addRun(makeRun({ createdAt: T0 + index }));
				const first = await registry.listRuns();
				expect(first.runs).toHaveLength(100);
				expect(first.runs[0]?.createdAt).toBe(T0 + 104);
				expect(first.nextCursor).toBeDefined();
				const second = await registry.listRuns({ cursor: first.nextCursor as string });
				expect(second.runs.map((run) => run.createdAt)).toEqual([T0 + 4, T0 + 3, T0 + 2, T0 + 1, T0]);
				expect(second.nextCursor).toBeUndefined();
			});

			test('cursor pagination walks 25 runs in pages of 7 without duplicates or skips', async (registry) => {
				const runs = Array.from({ length: 25 }, (_, index) => makeRun({ createdAt: T0 + index * 1_000 }));
				for (const run of [...runs].reverse()) await registry.addRun(run);
				const pages = await allPages(registry, { limit: 7 });
				expect(pages.map((page) => page.length)).toEqual([7, 7, 7, 4]);
				expect(pages.flat().map((run) => run.runId)).toEqual(ids([...runs].reverse()));
			});

			test('cursor pagination honours filters on every page', async (registry) => {
				const moduleId = unique('module');
				const running: string[] = [];
				for (let index = 0; index < 30; index++) {
					const run = runIn(index % 2 === 0 ? 'running' : 'queued', { moduleId, createdAt: T0 + index });
					await registry.addRun(run);
					if (run.status === 'running') running.unshift(run.runId);
				}
				const pages = await allPages(registry, { status: 'running', moduleId, limit: 4 });
				expect(pages.map((page) => page.length)).toEqual([4, 4, 4, 3]);
				expect(pages.flat().map((run) => run.runId)).toEqual(running);
			});

			test('cursor pagination returns every run once when createdAt values tie', async (registry) => {
				const runs = Array.from({ length: 10 }, () => makeRun({ createdAt: T0 }));
				for (const run of runs) await registry.addRun(run);
				const pages = await allPages(registry, { limit: 3 });
				expect(pages.map((page) => page.length)).toEqual([3, 3, 3, 1]);
				const walked = pages.flat().map((run) => run.runId);
				expect([...walked].sort()).toEqual(ids(runs).sort());
				expect(walked).toEqual(ids((await registry.listRuns({ limit: 10 })).runs));
			});

			test('runs added between pages cause no duplicate and no skip', async (registry) => {
				const runs = Array.from({ length: 20 }, (_, index) => makeRun({ createdAt: T0 + index * 10 }));
				for (const run of runs) await registry.addRun(run);
				const seen: string[] = [];
				const added: string[] = [];
				let page = await registry.listRuns({ limit: 6 });
				let pages = 1;
				seen.push(...ids(page.runs));
				while (page.nextCursor !== undefined && pages < 100) {
					// Newer runs, and one older than every run so far: a cursor must not shift with them.
					for (const createdAt of [T0 + 5_000 + pages, T0 + 5_100 + pages, T0 - pages]) {
						const run = makeRun({ createdAt });
						await registry.addRun(run);
						added.push(run.runId);
					}
					page = await registry.listRuns({ limit: 6, cursor: page.nextCursor });
					seen.push(...ids(page.runs));
					pages++;
				}
				expect(new Set(seen).size).toBe(seen.length);
				expect(seen.filter((id) => !added.includes(id))).toEqual(ids([...runs].reverse()));
				const newer = new Set(added.filter((_, index) => index % 3 !== 2));
				expect(seen.filter((id) => newer.has(id))).toEqual([]);
			});

			test('a cursor stays valid after the run it ends on is deleted', async (registry) => {
				const runs = Array.from({ length: 9 }, (_, index) => makeRun({ createdAt: T0 + index }));
				for (const run of runs) await registry.addRun(run);
				const first = await registry.listRuns({ limit: 3 });
				expect(await registry.deleteRun(runs[6]?.runId as string)).toBe(true);
				expect(await registry.deleteRun(runs[4]?.runId as string)).toBe(true);
				const second = await registry.listRuns({ limit: 3, cursor: first.nextCursor as string });
				expect(ids(second.runs)).toEqual([runs[5], runs[3], runs[2]].map((run) => run?.runId));
			});

			test('listRuns rejects a limit that is not an integer from 1 to 10,000 with ValidationError', async (registry) => {
				await registry.addRun(makeRun());
				for (const limit of [0, -1, 1.5, 10_001, Number.NaN, Number.POSITIVE_INFINITY, '5' as unknown as number]) {
					await expectRejection(registry.listRuns({ limit }), 'ValidationError');
				}
			});

			test('listRuns rejects a cursor it did not issue with ValidationError', async (registry) => {
				await registry.addRun(makeRun());
				for (const cursor of ['not a cursor', '%%%', '!!', '{"offset":1}']) {
					await expectRejection(registry.listRuns({ cursor }), 'ValidationError');
				}
			});
		});

		describe('deleteRun', () => {
			test('deleteRun removes a run from getRun and from every listing, resolving true then false', async (registry) => {
				const run = runIn('running', { itemId: unique('item'), ownerId: unique('owner') });
				const other = makeRun({ moduleId: run.moduleId, itemId: run.itemId as string, createdAt: T0 - 1 });
				await registry.addRun(run);
				await registry.addRun(other);
				expect(await registry.deleteRun(run.runId)).toBe(true);
				expect(await registry.getRun(run.runId)).toBeUndefined();
				expect(ids((await registry.listRuns()).runs)).toEqual([other.runId]);
				expect(ids((await registry.listRuns({ moduleId: run.moduleId })).runs)).toEqual([other.runId]);
				expect(ids((await registry.listRuns({ itemId: run.itemId as string })).runs)).toEqual([other.runId]);
				expect((await registry.listRuns({ status: 'running' })).runs).toEqual([]);
				expect((await registry.listRuns({ ownerId: run.ownerId as string })).runs).toEqual([]);
				expect(await registry.deleteRun(run.runId)).toBe(false);
			});

			test('deleteRun resolves false for an unknown id', async (registry) => {
				expect(await registry.deleteRun(unique('missing'))).toBe(false);
			});

			test('a deleted run id can be added again', async (registry) => {
				const run = runIn('completed');
				await registry.addRun(run);
				await registry.deleteRun(run.runId);
				const again = { ...makeRun(), runId: run.runId };
				await registry.addRun(again);
				expect(await registry.getRun(run.runId)).toEqual(again);
			});
		});

		describe('cleanupOldRuns', () => {
			test('cleanupOldRuns removes only terminal runs that ended before the cutoff and returns the count', async (registry) => {
				const now = Date.now();
				const old = now - 2 * HOUR;
				const oldCompleted = runIn('completed', { createdAt: old - HOUR, updatedAt: old, completedAt: old });
				const oldFailed = runIn('failed', { createdAt: old - HOUR, updatedAt: old, completedAt: old - HOUR });
				// No completedAt: the end is updatedAt.
				const oldCancelled: Run = { ...makeRun({ createdAt: old - HOUR, updatedAt: old }), status: 'cancelled' };
				const recent = runIn('completed', { createdAt: old, updatedAt: now, completedAt: now - 60_000 });
				const oldQueued = makeRun({ createdAt: old - 5 * HOUR, updatedAt: old - 5 * HOUR });
				const oldRunning = runIn('running', { createdAt: old - 5 * HOUR, updatedAt: old - 5 * HOUR, startedAt: old - 5 * HOUR });
				for (const run of [oldCompleted, oldFailed, oldCancelled, recent, oldQueued, oldRunning]) await registry.addRun(run);

				expect(await registry.cleanupOldRuns(HOUR)).toBe(3);
				for (const run of [oldCompleted, oldFailed, oldCancelled]) expect(await registry.getRun(run.runId)).toBeUndefined();
				for (const run of [recent, oldQueued, oldRunning]) expect(await registry.getRun(run.runId)).toEqual(run);
				expect((await registry.listRuns()).runs).toHaveLength(3);
				expect(await registry.cleanupOldRuns(HOUR)).toBe(0);
			});

			test('cleanupOldRuns removes exactly the runs older than each maxAgeMs', async (registry) => {
				const now = Date.now();
				const minutes = [10, 30, 120, 300];
				const runs = minutes.map((minute) => runIn('completed', { completedAt: now - minute * 60_000, updatedAt: now - minute * 60_000 }));
				for (const run of runs) await registry.addRun(run);
				expect(await registry.cleanupOldRuns(HOUR)).toBe(2);
				expect(await registry.cleanupOldRuns(20 * 60_000)).toBe(1);
				expect(await registry.cleanupOldRuns(0)).toBe(1);
				expect((await registry.listRuns()).runs).toEqual([]);
			});

			test('cleanupOldRuns uses the completedAt set by updateRun', async (registry) => {
				const run = runIn('running');
				const active = runIn('running');
				await registry.addRun(run);
				await registry.addRun(active);
				await registry.updateRun(run.runId, { status: 'completed', completedAt: Date.now() - 2 * HOUR });
				expect(await registry.cleanupOldRuns(HOUR)).toBe(1);
				expect(await registry.getRun(run.runId)).toBeUndefined();
				expect(await registry.getRun(active.runId)).toEqual(active);
			});

			test('cleanupOldRuns(0) never removes an active run', async (registry) => {
				const runs = [makeRun({ createdAt: 0, updatedAt: 0 }), runIn('running', { createdAt: 0, updatedAt: 0, startedAt: 0 })];
				for (const run of runs) await registry.addRun(run);
				expect(await registry.cleanupOldRuns(0)).toBe(0);
				expect((await registry.listRuns()).runs).toHaveLength(2);
			});
		});

		describe('snapshots', () => {
			const richRun = () =>
				runIn('running', {
					parameters: { list: [1, 2], nested: { value: 'a' } },
					progress: { percent: 10, message: 'start' },
					metadata: { tags: ['x'], info: { level: 1 } },
				});

			// Changes every mutable part of a run object, top level and nested.
			const vandalize = (value: Run): void => {
				const run = value as MutableRun & { parameters: { list: number[]; nested: { value: string } } };
				run.parameters.list.push(3);
				run.parameters.nested.value = 'changed';
				(run.progress as { percent: number }).percent = 99;
				((run.metadata as { tags: string[] }).tags).push('y');
				((run.metadata as { info: { level: number } }).info).level = 2;
				if (run.result !== undefined) (run.result as { rows: number[] }).rows.push(4);
				if (run.error !== undefined) (run.error as { message: string }).message = 'changed';
				run.status = 'failed';
				run.moduleId = 'changed';
				run.ownerId = 'changed';
				run.createdAt = 0;
			};

			test('mutating a run returned by getRun changes nothing stored', async (registry) => {
				const run = richRun();
				await registry.addRun(run);
				vandalize((await registry.getRun(run.runId)) as Run);
				expect(await registry.getRun(run.runId)).toEqual(run);
			});

			test('mutating runs returned by listRuns changes nothing stored', async (registry) => {
				const run = richRun();
				await registry.addRun(run);
				for (const listed of (await registry.listRuns()).runs) vandalize(listed);
				expect(await registry.getRun(run.runId)).toEqual(run);
				expect((await registry.listRuns({ status: 'running' })).runs).toEqual([run]);
			});

			test('mutating the run passed to addRun afterwards changes nothing stored', async (registry) => {
				const run = richRun();
				const passed = structuredClone(run);
				await registry.addRun(passed);
				vandalize(passed);
				expect(passed).not.toEqual(run);
				expect(await registry.getRun(run.runId)).toEqual(run);
			});

			test('mutating a patch or the run updateRun returned changes nothing stored', async (registry) => {
				const run = richRun();
				await registry.addRun(run);
				const patch = { status: 'completed' as const, result: { rows: [1, 2, 3] }, progress: { percent: 100 }, metadata: { tags: ['done'], info: { level: 5 } } };
				const updated = (await registry.updateRun(run.runId, patch)) as Run;
				const expected = structuredClone(updated);
				patch.result.rows.push(4);
				patch.progress.percent = 0;
				patch.metadata.tags.push('again');
				patch.metadata.info.level = 6;
				vandalize(updated);
				expect(await registry.getRun(run.runId)).toEqual(expected);
				expect(expected).toMatchObject({ status: 'completed', result: { rows: [1, 2, 3] }, progress: { percent: 100 }, metadata: { tags: ['done'], info: { level: 5 } } });
			});
		});

		describe('concurrency', () => {
			test('of 100 concurrent compare-and-set updates exactly one wins', async (registry) => {
				const run = makeRun();
				await registry.addRun(run);
				const results = await Promise.all(
					Array.from({ length: 100 }, (_, index) =>
						registry.updateRun(run.runId, { status: 'running', ownerId: `owner-${index}` }, { ifStatus: 'queued' }),
					),
				);
				const winners = results.filter((result) => result !== undefined);
				expect(winners).toHaveLength(1);
				expect(winners[0]?.status).toBe('running');
				expect(await registry.getRun(run.runId)).toMatchObject({ status: 'running', ownerId: winners[0]?.ownerId });
			});

			test('of 100 concurrent addRun calls with one id exactly one succeeds', async (registry) => {
				const runId = unique('run');
				const results = await Promise.allSettled(Array.from({ length: 100 }, (_, index) => registry.addRun(makeRun({ runId, metadata: { index } }))));
				const fulfilled = results.filter((result) => result.status === 'fulfilled');
				const rejected = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
				expect(fulfilled).toHaveLength(1);
				expect(rejected).toHaveLength(99);
				for (const result of rejected) expect(result.reason).toMatchObject({ name: 'RunExistsError' });
				const stored = await registry.getRun(runId);
				expect(stored?.metadata).toEqual({ index: results.findIndex((result) => result.status === 'fulfilled') });
			});
		});

		describe('applyWrites (when the adapter has it)', () => {
			// Runs only against an adapter with applyWrites: the others have nothing to check here.
			const batchTest = (name: string, body: (registry: RunRegistry, applyWrites: (writes: readonly RunWrite[]) => Promise<RunWriteResult[]>) => Promise<void>): void => {
				test(name, async (registry) => {
					if (registry.applyWrites === undefined) return;
					await body(registry, (writes) => (registry.applyWrites as NonNullable<RunRegistry['applyWrites']>).call(registry, writes));
				});
			};
			const add = (run: Run): RunWrite => ({ type: 'add', run });
			const update = (runId: string, ifStatus: RunStatus, patch: RunPatch): RunWrite => ({ type: 'update', runId, ifStatus, patch });

			batchTest('an empty batch resolves no results', async (_registry, applyWrites) => {
				expect(await applyWrites([])).toEqual([]);
			});

			batchTest('applies the writes of a batch in order: an add, then updates of the same run', async (registry, applyWrites) => {
				const run = makeRun({ itemId: unique('item'), ownerId: unique('owner') });
				const results = await applyWrites([
					add(run),
					update(run.runId, 'queued', { status: 'running', startedAt: T0 + 1 }),
					update(run.runId, 'running', { progress: { percent: 50 } }),
					update(run.runId, 'running', { status: 'completed', result: { rows: 3 }, completedAt: T0 + 2 }),
				]);
				expect(results).toEqual([{ outcome: 'applied' }, { outcome: 'applied' }, { outcome: 'applied' }, { outcome: 'applied' }]);
				const stored = await registry.getRun(run.runId);
				const { updatedAt: _updatedAt, ...unchanged } = run;
				expect(stored).toMatchObject({ ...unchanged, status: 'completed', startedAt: T0 + 1, progress: { percent: 50 }, result: { rows: 3 }, completedAt: T0 + 2 });
				expect(ids((await registry.listRuns({ status: 'completed', itemId: run.itemId as string })).runs)).toEqual([run.runId]);
				expect((await registry.listRuns({ status: ['queued', 'running'] })).runs).toEqual([]);
			});

			batchTest('stores an added run exactly as addRun would', async (registry, applyWrites) => {
				const active = makeRun({ moduleName: 'Name', itemId: unique('item'), ownerId: unique('owner'), priority: 'high', metadata: { a: [1] } });
				const done = runIn('failed', { createdAt: T0 + 1 });
				const bare: Run = { runId: unique('run'), moduleId: unique('module'), status: 'queued', priority: 'low', parameters: undefined, createdAt: T0 + 2, updatedAt: T0 + 2 };
				expect(await applyWrites([add(active), add(done), add(bare)])).toEqual([{ outcome: 'applied' }, { outcome: 'applied' }, { outcome: 'applied' }]);
				expect(await registry.getRun(active.runId)).toEqual(active);
				expect(await registry.getRun(done.runId)).toEqual(done);
				expect(await registry.getRun(bare.runId)).toEqual(bare);
				expect((await registry.listRuns()).runs).toEqual([bare, done, active]);
			});

			batchTest('an update whose ifStatus does not match is missed, and changes nothing', async (registry, applyWrites) => {
				const run = runIn('running');
				await registry.addRun(run);
				expect(await applyWrites([update(run.runId, 'queued', { status: 'cancelled' })])).toEqual([{ outcome: 'missed' }]);
				expect(await registry.getRun(run.runId)).toEqual(run);
				// A terminal run outside ifStatus: missed too, as updateRun resolves undefined.
				const done = runIn('completed');
				await registry.addRun(done);
				expect(await applyWrites([update(done.runId, 'running', { status: 'failed' })])).toEqual([{ outcome: 'missed' }]);
				expect(await registry.getRun(done.runId)).toEqual(done);
			});

			batchTest('an update of an unknown run is missed, and creates nothing', async (registry, applyWrites) => {
				const runId = unique('missing');
				expect(await applyWrites([update(runId, 'queued', { status: 'running' })])).toEqual([{ outcome: 'missed' }]);
				expect(await registry.getRun(runId)).toBeUndefined();
				expect((await registry.listRuns()).runs).toEqual([]);
			});

			batchTest('an add of a taken id fails with RunExistsError and keeps the first run', async (registry, applyWrites) => {
				const first = makeRun();
				await registry.addRun(first);
				const results = await applyWrites([add({ ...makeRun(), runId: first.runId, status: 'running' })]);
				expect(results).toHaveLength(1);
				expect(results[0]).toMatchObject({ outcome: 'failed', error: { name: 'RunExistsError' } });
				expect(await registry.getRun(first.runId)).toEqual(first);
				// Twice in one batch: the second finds the first.
				const twice = makeRun();
				const again = await applyWrites([add(twice), add({ ...twice, metadata: { second: true } })]);
				expect(again[0]).toEqual({ outcome: 'applied' });
				expect(again[1]).toMatchObject({ outcome: 'failed', error: { name: 'RunExistsError' } });
				expect(await registry.getRun(twice.runId)).toEqual(twice);
			});

			batchTest('an illegal update fails with IllegalTransitionError and changes nothing', async (registry, applyWrites) => {
				const done = runIn('completed');
				const queued = makeRun();
				await registry.addRun(done);
				await registry.addRun(queued);
				const results = await applyWrites([
					update(done.runId, 'completed', { status: 'running' }),
					update(queued.runId, 'queued', { status: 'completed', result: 1 }),
					update(done.runId, 'completed', { progress: { percent: 99 } }),
				]);
				expect(results).toMatchObject([
					{ outcome: 'failed', error: { name: 'IllegalTransitionError', from: 'completed', to: 'running' } },
					{ outcome: 'failed', error: { name: 'IllegalTransitionError', from: 'queued', to: 'completed' } },
					{ outcome: 'failed', error: { name: 'IllegalTransitionError', from: 'completed', to: 'completed' } },
				]);
				expect(await registry.getRun(done.runId)).toEqual(done);
				expect(await registry.getRun(queued.runId)).toEqual(queued);
			});

			batchTest('a write that fails fails alone: the others of the batch apply', async (registry, applyWrites) => {
				const existing = makeRun();
				await registry.addRun(existing);
				const a = makeRun({ createdAt: T0 + 1 });
				const b = makeRun({ createdAt: T0 + 2 });
				const results = await applyWrites([
					add(a),
					add({ ...makeRun(), moduleId: '' }),
					update(existing.runId, 'queued', { status: 'bogus' as RunStatus }),
					add({ ...makeRun(), runId: existing.runId }),
					update(existing.runId, 'queued', { status: 'running', startedAt: T0 + 5 }),
					update(a.runId, 'queued', { status: 'completed' }),
					add(b),
					update(unique('missing'), 'running', { progress: { percent: 1 } }),
				]);
				expect(results).toMatchObject([
					{ outcome: 'applied' },
					{ outcome: 'failed', error: { name: 'ValidationError' } },
					{ outcome: 'failed', error: { name: 'ValidationError' } },
					{ outcome: 'failed', error: { name: 'RunExistsError' } },
					{ outcome: 'applied' },
					{ outcome: 'failed', error: { name: 'IllegalTransitionError' } },
					{ outcome: 'applied' },
					{ outcome: 'missed' },
				]);
				expect(await registry.getRun(a.runId)).toEqual(a);
				expect(await registry.getRun(b.runId)).toEqual(b);
				expect(await registry.getRun(existing.runId)).toMatchObject({ status: 'running', startedAt: T0 + 5 });
				expect((await registry.listRuns()).runs).toHaveLength(3);
			});

			batchTest('an update write without one ifStatus fails with ValidationError: a compare-and-set never turns unconditional', async (registry, applyWrites) => {
				const run = makeRun();
				await registry.addRun(run);
				const loose = (ifStatus: unknown): RunWrite => ({ type: 'update', runId: run.runId, patch: { status: 'running' }, ifStatus }) as unknown as RunWrite;
				const results = await applyWrites([loose(undefined), loose(['queued', 'running']), loose('paused'), { type: 'update', runId: '', patch: {}, ifStatus: 'queued' }]);
				expect(results).toMatchObject([
					{ outcome: 'failed', error: { name: 'ValidationError' } },
					{ outcome: 'failed', error: { name: 'ValidationError' } },
					{ outcome: 'failed', error: { name: 'ValidationError' } },
					{ outcome: 'failed', error: { name: 'ValidationError' } },
				]);
				expect(await registry.getRun(run.runId)).toEqual(run);
			});

			batchTest('keeps every index current: listRuns after a batch matches the runs as stored', async (registry, applyWrites) => {
				const moduleId = unique('module');
				const item = unique('item');
				const o1 = unique('owner');
				const o2 = unique('owner');
				const runs = Array.from({ length: 6 }, (_, index) =>
					makeRun({ moduleId, createdAt: T0 + index, ...(index % 2 === 0 ? { itemId: item } : {}), ...(index < 3 ? { ownerId: o1 } : {}) }),
				);
				const [r0, r1, r2, r3, r4, r5] = runs.map((run) => run.runId) as [string, string, string, string, string, string];
				const results = await applyWrites([
					...runs.map(add),
					update(r0, 'queued', { status: 'running', ownerId: o2 }),
					update(r1, 'queued', { status: 'cancelled' }),
					update(r2, 'queued', { status: 'running' }),
					update(r2, 'running', { status: 'failed', error: { name: 'Error', message: 'x' }, completedAt: T0 + 9 }),
					update(r3, 'queued', { ownerId: o1 }),
					update(r4, 'queued', { status: 'running' }),
				]);
				expect(results.every((result) => result.outcome === 'applied')).toBe(true);
				const list = async (query: RunQuery) => ids((await registry.listRuns(query)).runs);
				expect(await list({ moduleId })).toEqual([r5, r4, r3, r2, r1, r0]);
				expect(await list({ status: 'queued' })).toEqual([r5, r3]);
				expect(await list({ status: 'running' })).toEqual([r4, r0]);
				expect(await list({ status: ['cancelled', 'failed'] })).toEqual([r2, r1]);
				expect(await list({ ownerId: o1 })).toEqual([r3, r2, r1]);
				expect(await list({ ownerId: o2 })).toEqual([r0]);
				expect(await list({ itemId: item, status: ['queued', 'running'] })).toEqual([r4, r0]);
				for (const run of runs) {
					const stored = await registry.getRun(run.runId);
					expect((await registry.listRuns({ status: stored?.status as RunStatus, moduleId })).runs.filter((listed) => listed.runId === run.runId)).toEqual([stored]);
				}
			});

			batchTest('stamps updatedAt with the current time, never earlier than before, across and within batches', async (registry, applyWrites) => {
				const run = makeRun({ updatedAt: T0 });
				const ahead = makeRun({ updatedAt: Date.now() + 3_600_000 });
				await registry.addRun(ahead);
				const before = Date.now();
				await applyWrites([add(run), update(run.runId, 'queued', { progress: { percent: 1 } }), update(ahead.runId, 'queued', { progress: { percent: 1 } })]);
				const after = Date.now();
				const first = (await registry.getRun(run.runId))?.updatedAt as number;
				expect(first).toBeGreaterThanOrEqual(before);
				expect(first).toBeLessThanOrEqual(after);
				expect((await registry.getRun(ahead.runId))?.updatedAt).toBe(ahead.updatedAt);
				let previous = first;
				for (let percent = 2; percent <= 10; percent++) {
					await applyWrites([update(run.runId, 'queued', { progress: { percent } }), update(run.runId, 'queued', { progress: { percent, message: 'again' } })]);
					const stored = await registry.getRun(run.runId);
					expect(stored?.updatedAt).toBeGreaterThanOrEqual(previous);
					previous = stored?.updatedAt ?? Number.NaN;
				}
				expect(await registry.getRun(run.runId)).toMatchObject({ progress: { percent: 10, message: 'again' }, updatedAt: previous });
			});
		});

		if (options.batchRead === true) {
			describe('getRuns', () => {
				test('returns the runs in the order asked, undefined for unknown ids', async (registry) => {
					const first = makeRun();
					const second = runIn('running');
					await registry.addRun(first);
					await registry.addRun(second);
					const runs = await registry.getRuns!([second.runId, unique('missing'), first.runId]);
					expect(runs).toHaveLength(3);
					expect(runs[0]).toMatchObject({ runId: second.runId, status: 'running' });
					expect(runs[1]).toBeUndefined();
					expect(runs[2]).toMatchObject({ runId: first.runId, status: 'queued' });
					expect(await registry.getRuns!([])).toEqual([]);
				});
			});
		}

		if (options.leases === true) {
			const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

			describe('owner leases', () => {
				test('reaps the queued and running runs of an owner whose lease lapsed, and nothing else', async (registry) => {
					const lost = unique('owner');
					const alive = unique('owner');
					await registry.heartbeat!(lost, 150);
					await registry.heartbeat!(alive, 60_000);
					const lostQueued = runIn('queued', { ownerId: lost });
					const lostRunning = runIn('running', { ownerId: lost });
					const lostDone = runIn('completed', { ownerId: lost });
					const aliveRunning = runIn('running', { ownerId: alive });
					const ownerless = runIn('running');
					for (const run of [lostQueued, lostRunning, lostDone, aliveRunning, ownerless]) await registry.addRun(run);

					expect(await registry.reapOrphans!()).toEqual([]);
					await sleep(400);
					const reaped = await registry.reapOrphans!();
					expect([...reaped].sort()).toEqual([lostQueued.runId, lostRunning.runId].sort());
					for (const run of [lostQueued, lostRunning]) {
						const stored = await registry.getRun(run.runId);
						expect(stored).toMatchObject({ status: 'failed', error: { name: 'OwnerLostError' } });
						expect(stored?.completedAt).toBeDefined();
					}

					expect((await registry.getRun(lostDone.runId))?.status).toBe('completed');
					expect((await registry.getRun(aliveRunning.runId))?.status).toBe('running');
					expect((await registry.getRun(ownerless.runId))?.status).toBe('running');
					expect(await registry.reapOrphans!()).toEqual([]);
				});

				test('never lets a late write of the reaped owner overwrite the reaped state', async (registry) => {
					const owner = unique('owner');
					await registry.heartbeat!(owner, 100);
					const run = runIn('running', { ownerId: owner });
					await registry.addRun(run);
					await sleep(300);
					expect(await registry.reapOrphans!()).toEqual([run.runId]);
					expect(await registry.updateRun(run.runId, { status: 'completed', result: 1, completedAt: T0 + 5 }, { ifStatus: 'running' })).toBeUndefined();
					expect(await registry.getRun(run.runId)).toMatchObject({ status: 'failed', error: { name: 'OwnerLostError' } });
				});

				test('keeps the runs of an owner that renews its lease, and reaps them once it is released', async (registry) => {
					const owner = unique('owner');
					const run = runIn('running', { ownerId: owner });
					await registry.addRun(run);
					for (let beat = 0; beat < 4; beat++) {
						await registry.heartbeat!(owner, 250);
						await sleep(100);
						expect(await registry.reapOrphans!()).toEqual([]);
					}

					await registry.releaseOwner!(owner);
					expect(await registry.reapOrphans!()).toEqual([run.runId]);
				});

				test('reaps the runs of an owner that never held a lease', async (registry) => {
					const run = runIn('running', { ownerId: unique('owner') });
					await registry.addRun(run);
					expect(await registry.reapOrphans!()).toEqual([run.runId]);
				});
			});
		}
	});
}
