/**
 * BackgroundTaskManager: a run's life from startTask to its terminal state, validation,
 * concurrency and priorities, timeouts, progress, events, retention and the read API.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

import { describe, expect, it } from 'vitest';
import {
	BackgroundTaskManager,
	CancelledError,
	MemoryRunRegistry,
	QueueFullError,
	RunExistsError,
	RunNotFoundError,
	RunledgerError,
	ShutdownError,
	TimeoutError,
	ValidationError,
	type BackgroundTaskManagerOptions,
	type Run,
	type TaskContext,
} from '../src/index.js';
import { deferred, sleep, tick, until } from './support/deferred.js';
import { ForwardingRegistry } from './support/forwarding-registry.js';
import { createManager, shutdownManagersAfterEach } from './support/harness.js';
import { RecordingLogger } from './support/logger.js';
import { ConcurrencyMeter, controlledTask } from './support/tasks.js';

shutdownManagersAfterEach();

/** Calls `fn` and returns what it threw (failing the test when it did not throw). */
function thrown(fn: () => unknown): unknown {
	try {
		fn();
	} catch (error) {
		return error;
	}

	throw new Error('expected the call to throw');
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
	try {
		await promise;
	} catch (error) {
		return error;
	}

	throw new Error('expected the promise to reject');
}

describe('startTask', () => {
	it('returns a 20-character URL-safe id at once and records the run QUEUED', () => {
		const { manager, events } = createManager();
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'render' }, task.fn);

		expect(runId).toMatch(/^[A-Za-z0-9_-]{20}$/);
		expect(manager.isTaskActive(runId)).toBe(true);
		expect(manager.getActiveTaskCount()).toBe(1);
		expect(manager.getActiveTaskIds()).toEqual([runId]);
		expect(manager.getStats()).toMatchObject({ queued: 1, running: 0 });
		expect(events.names(runId)).toEqual(['queued']);
		expect(events.of(runId)[0]!.run).toMatchObject({ runId, moduleId: 'render', status: 'queued', priority: 'normal', parameters: {} });
	});

	it('gives every run a different id', () => {
		const { manager } = createManager();
		const ids = new Set(Array.from({ length: 50 }, () => manager.startTask({ moduleId: 'm' }, controlledTask().fn)));
		expect(ids.size).toBe(50);
	});

	// Ids a manager makes: all 20 characters random on any registry; on a MemoryRunRegistry the last
	// 4 name the run's slot in the registry's table, and the first 16 (96 bits) are random.
	for (const [registryKind, randomPositions] of [['a registry without ids of its own', 20], ['a MemoryRunRegistry', 16]] as const) {
		it(`draws every random character of generated ids from the whole base64url alphabet, across pool refills (${registryKind})`, async () => {
			const { manager } = createManager({ concurrency: 1 }, randomPositions === 20 ? new ForwardingRegistry() : new MemoryRunRegistry({ maxRuns: 10_000 }));
			const blocker = controlledTask();
			manager.startTask({ moduleId: 'm' }, blocker.fn);
			// 6,400 ids (12 refills of the 512-id pool): each of the 64 characters is expected 100 times in each position.
			const ids = Array.from({ length: 6400 }, () => manager.startTask({ moduleId: 'm' }, async () => 1));
			expect(new Set(ids).size).toBe(ids.length);
			for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{20}$/);
			for (let position = 0; position < randomPositions; position++) {
				const counts = new Map<string, number>();
				for (const id of ids) counts.set(id[position]!, (counts.get(id[position]!) ?? 0) + 1);
				expect(counts.size).toBe(64);
				// A uniform draw falls below 40 with a probability of about 1e-12 per character and position.
				expect(Math.min(...counts.values())).toBeGreaterThan(40);
			}
			blocker.done.resolve(0);
			await manager.waitAll();
		});
	}

	it('uses the runId given', () => {
		const { manager } = createManager();
		expect(manager.startTask({ runId: 'my-run-1', moduleId: 'm' }, controlledTask().fn)).toBe('my-run-1');
		expect(manager.isTaskActive('my-run-1')).toBe(true);
	});

	it('never calls the task function inside startTask', async () => {
		const { manager } = createManager();
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		expect(task.calls).toBe(0);
		const context = await task.called;
		expect(task.calls).toBe(1);
		expect(context.runId).toBe(runId);
	});

	it('passes the run id, parameters, an unaborted signal and reportProgress to the task', async () => {
		const { manager } = createManager();
		let seen: TaskContext | undefined;
		const runId = manager.startTask({ moduleId: 'm', parameters: { url: 'https://x.test', pages: 3 } }, (ctx) => {
			seen = ctx;
			return 'ok';
		});
		await manager.waitForRun(runId, { timeoutMs: 2000 });
		expect(seen!.runId).toBe(runId);
		expect(seen!.parameters).toEqual({ url: 'https://x.test', pages: 3 });
		expect(seen!.signal).toBeInstanceOf(AbortSignal);
		expect(seen!.signal.aborted).toBe(false);
		expect(typeof seen!.reportProgress).toBe('function');
	});

	it('records moduleName, itemId, priority and metadata on the run', async () => {
		const { manager, registry } = createManager();
		const task = controlledTask();
		const runId = manager.startTask(
			{ moduleId: 'm', moduleName: 'Module M', itemId: 'doc-7', priority: 'high', metadata: { requestId: 'r-1' } },
			task.fn,
		);
		await task.called;
		await manager.flush();
		expect(await registry.getRun(runId)).toMatchObject({
			runId,
			moduleId: 'm',
			moduleName: 'Module M',
			itemId: 'doc-7',
			priority: 'high',
			metadata: { requestId: 'r-1' },
			status: 'running',
		});
	});

	describe('validation', () => {
		const cases: Array<[string, () => [Record<string, unknown>, unknown], string]> = [
			['a missing moduleId', () => [{}, () => 1], 'run.moduleId'],
			['an empty moduleId', () => [{ moduleId: '' }, () => 1], 'run.moduleId'],
			['a task that is a number', () => [{ moduleId: 'm' }, 42], 'task'],
			['a task that is a plain object', () => [{ moduleId: 'm' }, { run: () => 1 }], 'task'],
			['a missing task', () => [{ moduleId: 'm' }, undefined], 'task'],
			['an unknown priority', () => [{ moduleId: 'm', priority: 'urgent' }, () => 1], 'run.priority'],
			['a timeout of 0', () => [{ moduleId: 'm', timeoutMs: 0 }, () => 1], 'run.timeoutMs'],
			['a negative timeout', () => [{ moduleId: 'm', timeoutMs: -5 }, () => 1], 'run.timeoutMs'],
			['a NaN timeout', () => [{ moduleId: 'm', timeoutMs: Number.NaN }, () => 1], 'run.timeoutMs'],
			['a string timeout', () => [{ moduleId: 'm', timeoutMs: '100' }, () => 1], 'run.timeoutMs'],
		];

		it.each(cases)('throws a ValidationError at once for %s and creates no run', (_name, make, field) => {
			const { manager, events } = createManager();
			const [run, task] = make();
			const error = thrown(() => manager.startTask(run as never, task as never));
			expect(error).toBeInstanceOf(ValidationError);
			expect((error as ValidationError).field).toBe(field);
			expect((error as ValidationError).message).toMatch(/^Expected `.+` to be .+, got .+$/);
			expect(manager.getActiveTaskCount()).toBe(0);
			expect(events.events).toHaveLength(0);
		});

		it('states expected and actual in the message', () => {
			const { manager } = createManager();
			const error = thrown(() => manager.startTask({ moduleId: 'm', priority: 'urgent' as never }, () => 1));
			expect((error as Error).message).toBe("Expected `run.priority` to be one of 'critical', 'high', 'normal', 'low', got string \"urgent\"");
		});
	});

	it('throws a RunExistsError for an id active in this manager and leaves the first run alone', async () => {
		const { manager } = createManager();
		const first = controlledTask();
		manager.startTask({ runId: 'dup', moduleId: 'm' }, first.fn);
		const second = controlledTask();
		const error = thrown(() => manager.startTask({ runId: 'dup', moduleId: 'm' }, second.fn));
		expect(error).toBeInstanceOf(RunExistsError);
		expect((error as RunExistsError).runId).toBe('dup');

		await first.called;
		first.done.resolve('first');
		const run = await manager.waitForRun('dup', { timeoutMs: 2000 });
		expect(run.status).toBe('completed');
		expect(run.result).toBe('first');
		expect(second.calls).toBe(0);
	});

	it('throws a ShutdownError after shutdown()', async () => {
		const { manager } = createManager();
		await manager.shutdown({ graceMs: 0 });
		expect(() => manager.startTask({ moduleId: 'm' }, () => 1)).toThrow(ShutdownError);
	});

	it('throws a ShutdownError while shutdown() is in progress', () => {
		const { manager } = createManager();
		const task = controlledTask();
		manager.startTask({ moduleId: 'm' }, task.fn);
		void manager.shutdown({ graceMs: 50, abortGraceMs: 10 });
		expect(() => manager.startTask({ moduleId: 'm' }, () => 1)).toThrow(ShutdownError);
	});

	it('throws a QueueFullError once maxQueued runs wait', async () => {
		const { manager } = createManager({ concurrency: 1, maxQueued: 2 });
		const running = controlledTask();
		manager.startTask({ moduleId: 'm' }, running.fn);
		await running.called;
		manager.startTask({ moduleId: 'm' }, controlledTask().fn);
		manager.startTask({ moduleId: 'm' }, controlledTask().fn);
		const error = thrown(() => manager.startTask({ moduleId: 'm' }, controlledTask().fn));
		expect(error).toBeInstanceOf(QueueFullError);
		expect((error as QueueFullError).maxQueued).toBe(2);
		expect(manager.getStats()).toMatchObject({ queued: 2, running: 1 });
	});

	it('counts runs that a free slot starts next as not waiting for maxQueued', () => {
		const { manager } = createManager({ concurrency: 1, maxQueued: 1 });
		// The first takes the free slot on the next drain, the second waits: the third is one too many.
		manager.startTask({ moduleId: 'm' }, controlledTask().fn);
		manager.startTask({ moduleId: 'm' }, controlledTask().fn);
		expect(() => manager.startTask({ moduleId: 'm' }, controlledTask().fn)).toThrow(QueueFullError);
		expect(manager.getActiveTaskCount()).toBe(2);
	});

	it('counts runs held back by their module limit against maxQueued', async () => {
		const { manager } = createManager({ concurrency: 4, concurrencyByModule: { video: 1 }, maxQueued: 2 });
		const running = controlledTask();
		manager.startTask({ moduleId: 'video' }, running.fn);
		await running.called;
		manager.startTask({ moduleId: 'video' }, controlledTask().fn);
		manager.startTask({ moduleId: 'video' }, controlledTask().fn);
		await tick();
		expect(manager.getStats()).toMatchObject({ queued: 2, running: 1 });
		// Two runs wait and none of them can start: a third waiting run is beyond maxQueued.
		expect(() => manager.startTask({ moduleId: 'video' }, controlledTask().fn)).toThrow(QueueFullError);
		expect(manager.getStats().queued).toBe(2);
	});
});

describe('a run from QUEUED to its terminal state', () => {
	it('goes QUEUED → RUNNING → COMPLETED with its result, in the events and the registry', async () => {
		const { manager, registry, events } = createManager();
		const task = controlledTask<{ pages: number }>();
		const runId = manager.startTask({ moduleId: 'render' }, task.fn);
		await task.called;

		expect(manager.getStats()).toMatchObject({ queued: 0, running: 1 });
		const running = await manager.getRun(runId);
		expect(running).toMatchObject({ status: 'running' });
		expect(typeof running!.startedAt).toBe('number');
		await manager.flush();
		expect(await registry.getRun(runId)).toMatchObject({ status: 'running', startedAt: running!.startedAt });

		task.done.resolve({ pages: 12 });
		const run = await manager.waitForRun(runId, { timeoutMs: 2000 });
		expect(run).toMatchObject({ runId, status: 'completed', result: { pages: 12 } });
		expect(run.completedAt).toBeGreaterThanOrEqual(run.startedAt!);
		expect(events.names(runId)).toEqual(['queued', 'started', 'completed']);
		expect(events.statuses(runId)).toEqual(['queued', 'running', 'completed']);
		expect(await registry.getRun(runId)).toMatchObject({ status: 'completed', result: { pages: 12 } });
		expect(manager.isTaskActive(runId)).toBe(false);
		expect(manager.getActiveTaskCount()).toBe(0);
		expect(manager.getStats()).toMatchObject({ queued: 0, running: 0, completed: 1, failed: 0, cancelled: 0 });
	});

	it('stores COMPLETED for a synchronous task that returns before its first write lands', async () => {
		const { manager, registry, events } = createManager();
		const runId = manager.startTask({ moduleId: 'm' }, () => 42);
		await manager.waitAll();
		expect(events.names(runId)).toEqual(['queued', 'started', 'completed']);
		expect(events.errors).toEqual([]);
		expect(await registry.getRun(runId)).toMatchObject({ status: 'completed', result: 42 });
	});

	it('stores COMPLETED for an async task that resolves at once', async () => {
		const { manager, registry, events } = createManager();
		const runId = manager.startTask({ moduleId: 'm' }, async () => 'fast');
		await manager.waitAll();
		expect(events.errors).toEqual([]);
		expect(await registry.getRun(runId)).toMatchObject({ status: 'completed', result: 'fast' });
	});

	it('stores FAILED for a task that throws synchronously', async () => {
		const { manager, registry, events } = createManager();
		const runId = manager.startTask({ moduleId: 'm' }, () => {
			throw new RangeError('bad page');
		});
		await manager.waitAll();
		expect(events.errors).toEqual([]);
		expect(await registry.getRun(runId)).toMatchObject({ status: 'failed', error: { name: 'RangeError', message: 'bad page' } });
	});

	it('records a rejection with the error name, message and stack', async () => {
		const { manager, registry, events } = createManager();
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		await task.called;
		await manager.flush();
		const error = new TypeError('cannot read page');
		task.done.reject(error);
		const run = await manager.waitForRun(runId, { timeoutMs: 2000 });
		expect(run.status).toBe('failed');
		expect(run.error).toMatchObject({ name: 'TypeError', message: 'cannot read page', stack: error.stack });
		expect(events.names(runId)).toEqual(['queued', 'started', 'failed']);
		expect(await registry.getRun(runId)).toMatchObject({ status: 'failed', error: { name: 'TypeError', message: 'cannot read page' } });
		expect(manager.getStats()).toMatchObject({ completed: 0, failed: 1, cancelled: 0 });
	});

	it.each([
		['a string', 'disk full', { name: 'Error', message: 'disk full' }],
		['null', null, { name: 'Error', message: 'Task threw a non-Error value: null' }],
		['undefined', undefined, { name: 'Error', message: 'Task threw a non-Error value: undefined' }],
		['a number', 7, { name: 'Error', message: 'Task threw a non-Error value: 7' }],
	])('records FAILED for a rejection with %s', async (_name, value, expected) => {
		const { manager, registry } = createManager();
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		await task.called;
		await manager.flush();
		task.done.reject(value);
		const run = await manager.waitForRun(runId, { timeoutMs: 2000 });
		expect(run).toMatchObject({ status: 'failed', error: expected });
		expect(await registry.getRun(runId)).toMatchObject({ status: 'failed', error: expected });
	});

	it('keeps a task result of undefined as a completed run without result', async () => {
		const { manager } = createManager();
		const task = controlledTask<undefined>();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		await task.called;
		task.done.resolve(undefined);
		const run = await manager.waitForRun(runId, { timeoutMs: 2000 });
		expect(run.status).toBe('completed');
		expect(run.result).toBeUndefined();
	});
});

describe('timeouts', () => {
	it('aborts the signal with a TimeoutError and records FAILED with error.name TimeoutError', async () => {
		const { manager, registry, events } = createManager();
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm', timeoutMs: 30 }, task.fn);
		const context = await task.called;
		const run = await manager.waitForRun(runId, { timeoutMs: 2000 });

		expect(run.status).toBe('failed');
		expect(run.error).toMatchObject({ name: 'TimeoutError', message: `Run "${runId}" timed out after 30 ms` });
		expect(context.signal.aborted).toBe(true);
		expect((context.signal.reason as Error).name).toBe('TimeoutError');
		expect(context.signal.reason).toBeInstanceOf(TimeoutError);
		expect((context.signal.reason as TimeoutError).timeoutMs).toBe(30);
		expect(events.names(runId)).toEqual(['queued', 'started', 'failed']);
		expect(await registry.getRun(runId)).toMatchObject({ status: 'failed', error: { name: 'TimeoutError' } });
	});

	it('discards the late result of a timed-out task and holds its slot until it settles', async () => {
		const { manager, registry, events } = createManager({ concurrency: 1 });
		const slow = controlledTask();
		const next = controlledTask();
		const slowId = manager.startTask({ moduleId: 'm', timeoutMs: 20 }, slow.fn);
		const nextId = manager.startTask({ moduleId: 'm' }, next.fn);
		await slow.called;
		await manager.waitForRun(slowId, { timeoutMs: 2000 });

		expect(manager.getStats()).toMatchObject({ queued: 1, running: 0, draining: 1, failed: 1 });
		await sleep(30);
		expect(next.calls).toBe(0);

		slow.done.resolve('too late');
		await next.called;
		expect(manager.getStats()).toMatchObject({ running: 1, draining: 0 });
		await manager.flush();
		expect(await registry.getRun(slowId)).toMatchObject({ status: 'failed', error: { name: 'TimeoutError' } });
		expect((await registry.getRun(slowId))!.result).toBeUndefined();
		expect(events.terminal(slowId).map((recorded) => recorded.event)).toEqual(['failed']);
		next.done.resolve(undefined);
		await manager.waitForRun(nextId, { timeoutMs: 2000 });
	});

	it('applies defaultTimeoutMs to runs that set no timeout', async () => {
		const { manager } = createManager({ defaultTimeoutMs: 20 });
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		const run = await manager.waitForRun(runId, { timeoutMs: 2000 });
		expect(run.error).toMatchObject({ name: 'TimeoutError', message: `Run "${runId}" timed out after 20 ms` });
	});

	it('lets a run timeoutMs override defaultTimeoutMs', async () => {
		const { manager } = createManager({ defaultTimeoutMs: 60_000 });
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm', timeoutMs: 20 }, task.fn);
		const run = await manager.waitForRun(runId, { timeoutMs: 2000 });
		expect(run.error).toMatchObject({ name: 'TimeoutError', message: `Run "${runId}" timed out after 20 ms` });
	});

	it('counts the timeout from the moment the run starts, not while it is queued', async () => {
		const { manager } = createManager({ concurrency: 1 });
		const blocker = controlledTask();
		manager.startTask({ moduleId: 'm' }, blocker.fn);
		const waiting = controlledTask();
		const runId = manager.startTask({ moduleId: 'm', timeoutMs: 60 }, waiting.fn);
		await blocker.called;
		await sleep(100);
		expect((await manager.getRun(runId))!.status).toBe('queued');

		blocker.done.resolve(undefined);
		await waiting.called;
		waiting.done.resolve('in time');
		expect(await manager.waitForRun(runId, { timeoutMs: 2000 })).toMatchObject({ status: 'completed', result: 'in time' });
	});

	it('does not time out a run that completes first', async () => {
		const { manager, events } = createManager();
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm', timeoutMs: 40 }, task.fn);
		await task.called;
		task.done.resolve('done');
		await manager.waitForRun(runId, { timeoutMs: 2000 });
		await sleep(60);
		expect(events.names(runId)).toEqual(['queued', 'started', 'completed']);
		expect(task.context!.signal.aborted).toBe(false);
	});
});

describe('concurrency', () => {
	it('runs at most `concurrency` task functions at once, and all of them eventually', async () => {
		const { manager, events } = createManager({ concurrency: 2 });
		const meter = new ConcurrencyMeter();
		const ids: string[] = [];
		for (let index = 0; index < 7; index++) {
			ids.push(
				manager.startTask({ moduleId: 'm' }, async () => {
					meter.enter();
					await sleep(5);
					meter.leave();
					return index;
				}),
			);
		}

		await manager.waitAll();
		expect(meter.max).toBe(2);
		expect(events.count('completed')).toBe(7);
		expect(manager.getStats()).toMatchObject({ completed: 7, queued: 0, running: 0 });
	});

	it('keeps extra runs QUEUED until a slot frees', async () => {
		const { manager } = createManager({ concurrency: 2 });
		const tasks = [controlledTask(), controlledTask(), controlledTask()];
		const ids = tasks.map((task) => manager.startTask({ moduleId: 'm' }, task.fn));
		await Promise.all([tasks[0]!.called, tasks[1]!.called]);
		await tick();
		expect(tasks[2]!.calls).toBe(0);
		expect((await manager.getRun(ids[2]!))!.status).toBe('queued');
		expect(manager.getStats()).toMatchObject({ queued: 1, running: 2 });

		tasks[0]!.done.resolve(undefined);
		await tasks[2]!.called;
		expect(manager.getStats()).toMatchObject({ queued: 0, running: 2, completed: 1 });
	});

	it('is unlimited by default', async () => {
		const { manager } = createManager();
		const meter = new ConcurrencyMeter();
		const tasks = Array.from({ length: 20 }, () => controlledTask({ meter }));
		for (const task of tasks) manager.startTask({ moduleId: 'm' }, task.fn);
		await Promise.all(tasks.map((task) => task.called));
		expect(meter.current).toBe(20);
		for (const task of tasks) task.done.resolve(undefined);
		await manager.waitAll();
	});

	it('limits each module by concurrencyByModule on top of the global limit', async () => {
		const { manager } = createManager({ concurrency: 3, concurrencyByModule: { video: 1, image: 2 } });
		const meter = new ConcurrencyMeter();
		const work = (moduleId: string) => async () => {
			meter.enter(moduleId);
			await sleep(3);
			meter.leave(moduleId);
		};
		// The first drain starts video-0, image-0 and image-1: video-1 waits for its module, not for a global slot.
		for (let index = 0; index < 4; index++) {
			manager.startTask({ moduleId: 'video' }, work('video'));
			manager.startTask({ moduleId: 'image' }, work('image'));
		}

		await manager.waitAll();
		expect(meter.maxByModule.get('video')).toBe(1);
		expect(meter.maxByModule.get('image')).toBe(2);
		expect(meter.max).toBe(3);
		expect(manager.getStats().completed).toBe(8);
	});

	it('does not let a module at its limit block runs of other modules', async () => {
		const { manager } = createManager({ concurrency: 3, concurrencyByModule: { video: 1 } });
		const video1 = controlledTask();
		const video2 = controlledTask();
		const image = controlledTask();
		manager.startTask({ moduleId: 'video', priority: 'critical' }, video1.fn);
		const video2Id = manager.startTask({ moduleId: 'video', priority: 'critical' }, video2.fn);
		manager.startTask({ moduleId: 'image', priority: 'low' }, image.fn);
		await Promise.all([video1.called, image.called]);
		expect(video2.calls).toBe(0);
		expect((await manager.getRun(video2Id))!.status).toBe('queued');

		video1.done.resolve(undefined);
		await video2.called;
	});
});

describe('the async context a task function runs in', () => {
	it("is the one of its startTask call, whichever run's end freed the slot that starts it", async () => {
		const { manager } = createManager({ concurrency: 1 });
		const storage = new AsyncLocalStorage<string>();
		const seen: string[] = [];
		for (const request of ['a', 'b', 'c']) {
			storage.run(request, () =>
				manager.startTask({ moduleId: 'm' }, async () => {
					seen.push(`${request} starts in ${storage.getStore()}`);
					await sleep(2);
					seen.push(`${request} goes on in ${storage.getStore()}`);
				}),
			);
		}
		// Started outside any context: none, even though the run before it ran in one.
		manager.startTask({ moduleId: 'm' }, async () => {
			seen.push(`d starts in ${storage.getStore()}`);
		});

		await manager.waitAll();
		expect(seen).toEqual(['a starts in a', 'a goes on in a', 'b starts in b', 'b goes on in b', 'c starts in c', 'c goes on in c', 'd starts in undefined']);
	});

	it('is the one its abort listener hears a timeout in', async () => {
		const { manager } = createManager({ concurrency: 1 });
		const storage = new AsyncLocalStorage<string>();
		const heard: Array<string | undefined> = [];
		for (const request of ['slow', 'timed']) {
			storage.run(request, () =>
				manager.startTask({ moduleId: 'm', ...(request === 'timed' ? { timeoutMs: 20 } : {}) }, ({ signal }) =>
					request === 'slow'
						? sleep(10)
						: new Promise((resolve) => signal.addEventListener('abort', () => resolve(heard.push(storage.getStore())))),
				),
			);
		}

		await manager.waitAll();
		// Armed when the run started, which the end of "slow" set off: still in "timed".
		expect(heard).toEqual(['timed']);
	});

	it('is the one of its startTask call for a run whose function waits for its first write to land', async () => {
		// Not a MemoryRunRegistry: writes land later, and a chosen id waits for its add.
		const { manager } = createManager({ concurrency: 1 }, new ForwardingRegistry());
		const storage = new AsyncLocalStorage<string>();
		const seen: Array<string | undefined> = [];
		for (const request of ['first', 'second']) {
			storage.run(request, () => manager.startTask({ moduleId: 'm', runId: `run-${request}` }, async () => void seen.push(storage.getStore())));
		}

		await manager.waitAll();
		expect(seen).toEqual(['first', 'second']);
	});
});

describe('priorities', () => {
	it('starts queued runs by priority, FIFO within one priority', async () => {
		const { manager, events } = createManager({ concurrency: 1 });
		const blocker = controlledTask();
		manager.startTask({ runId: 'blocker', moduleId: 'm' }, blocker.fn);
		await blocker.called;
		const order: Array<[string, 'critical' | 'high' | 'normal' | 'low']> = [
			['low-1', 'low'],
			['normal-1', 'normal'],
			['high-1', 'high'],
			['normal-2', 'normal'],
			['critical-1', 'critical'],
			['low-2', 'low'],
			['high-2', 'high'],
		];
		for (const [runId, priority] of order) manager.startTask({ runId, moduleId: 'm', priority }, () => runId);
		blocker.done.resolve(undefined);
		await manager.waitAll();
		expect(events.idsOf('started')).toEqual(['blocker', 'critical-1', 'high-1', 'high-2', 'normal-1', 'normal-2', 'low-1', 'low-2']);
	});

	it('defaults to normal priority', async () => {
		const { manager } = createManager();
		const runId = manager.startTask({ moduleId: 'm' }, controlledTask().fn);
		expect((await manager.getRun(runId))!.priority).toBe('normal');
	});
});

describe('progress', () => {
	it('clamps percent to 0–100 and emits each report with progressThrottleMs 0', async () => {
		const { manager, events } = createManager({ progressThrottleMs: 0 });
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		const ctx = await task.called;
		ctx.reportProgress(-20);
		ctx.reportProgress(35.5, 'page 3');
		ctx.reportProgress(250, 'overshoot');
		ctx.reportProgress(Number.POSITIVE_INFINITY);
		const progress = events.of(runId).filter((recorded) => recorded.event === 'progress').map((recorded) => recorded.run.progress);
		expect(progress).toEqual([{ percent: 0 }, { percent: 35.5, message: 'page 3' }, { percent: 100, message: 'overshoot' }, { percent: 100 }]);
		expect((await manager.getRun(runId))!.progress).toEqual({ percent: 100 });
		task.done.resolve(undefined);
		await manager.waitAll();
	});

	it.each([
		['NaN', Number.NaN],
		['a string', '50'],
		['undefined', undefined],
		['null', null],
	])('throws a ValidationError for a percent of %s', async (_name, value) => {
		const { manager, events } = createManager({ progressThrottleMs: 0 });
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		const ctx = await task.called;
		const error = thrown(() => ctx.reportProgress(value as number));
		expect(error).toBeInstanceOf(ValidationError);
		expect((error as ValidationError).field).toBe('percent');
		expect(events.count('progress')).toBe(0);
		task.done.resolve(undefined);
		await manager.waitForRun(runId, { timeoutMs: 2000 });
	});

	it('coalesces reports within progressThrottleMs and writes the last one before the terminal state', async () => {
		const { manager, registry, events } = createManager({ progressThrottleMs: 1000 });
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		const ctx = await task.called;
		await manager.flush();
		for (let percent = 10; percent <= 90; percent += 10) ctx.reportProgress(percent, `step ${percent / 10}`);
		expect(events.of(runId).filter((recorded) => recorded.event === 'progress').map((recorded) => recorded.run.progress)).toEqual([
			{ percent: 10, message: 'step 1' },
		]);

		task.done.resolve('done');
		const run = await manager.waitForRun(runId, { timeoutMs: 2000 });
		expect(events.names(runId)).toEqual(['queued', 'started', 'progress', 'progress', 'completed']);
		expect(events.of(runId)[3]!.run.progress).toEqual({ percent: 90, message: 'step 9' });
		expect(run.progress).toEqual({ percent: 90, message: 'step 9' });
		expect(await registry.getRun(runId)).toMatchObject({ status: 'completed', progress: { percent: 90, message: 'step 9' } });
	});

	it('emits the coalesced report once the interval has passed', async () => {
		const { manager, events } = createManager({ progressThrottleMs: 30 });
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		const ctx = await task.called;
		ctx.reportProgress(10);
		ctx.reportProgress(20);
		ctx.reportProgress(30);
		await until(() => events.count('progress') === 2, 'the throttled progress event');
		expect(events.of(runId).filter((recorded) => recorded.event === 'progress').map((recorded) => recorded.run.progress)).toEqual([
			{ percent: 10 },
			{ percent: 30 },
		]);
		await sleep(50);
		expect(events.count('progress')).toBe(2);
		task.done.resolve(undefined);
		await manager.waitAll();
	});

	it('ignores reports after the run ended', async () => {
		const { manager, registry, events } = createManager({ progressThrottleMs: 0 });
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		const ctx = await task.called;
		ctx.reportProgress(40);
		task.done.resolve(undefined);
		await manager.waitForRun(runId, { timeoutMs: 2000 });
		ctx.reportProgress(80);
		await manager.waitAll();
		expect(events.count('progress')).toBe(1);
		expect((await registry.getRun(runId))!.progress).toEqual({ percent: 40 });
	});
});

describe('events', () => {
	it('emits a snapshot that later changes do not mutate', async () => {
		const { manager, events } = createManager();
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		await task.called;
		task.done.resolve(1);
		await manager.waitForRun(runId, { timeoutMs: 2000 });
		expect(events.of(runId).map((recorded) => recorded.run.status)).toEqual(['queued', 'running', 'completed']);
	});

	it('reports a throwing listener on `error` and keeps working', async () => {
		const { manager, registry, events } = createManager();
		manager.on('started', () => {
			throw new Error('listener broke');
		});
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		await task.called;
		task.done.resolve('still fine');
		const run = await manager.waitForRun(runId, { timeoutMs: 2000 });
		expect(run).toMatchObject({ status: 'completed', result: 'still fine' });
		expect(events.errors).toHaveLength(1);
		expect(events.errors[0]).toBeInstanceOf(RunledgerError);
		expect(events.errors[0]!.message).toContain('listener broke');
		expect(await registry.getRun(runId)).toMatchObject({ status: 'completed' });
		expect(manager.getStats()).toMatchObject({ running: 0, completed: 1 });
	});

	it('logs a throwing listener through the injected logger', async () => {
		const logger = new RecordingLogger();
		const { manager } = createManager({ logger });
		manager.on('queued', () => {
			throw new Error('queued listener broke');
		});
		const runId = manager.startTask({ moduleId: 'm' }, controlledTask().fn);
		expect(logger.at('error')).toHaveLength(1);
		expect((logger.at('error')[0]!.object.err as Error).message).toContain('queued listener broke');
		expect(manager.isTaskActive(runId)).toBe(true);
	});
});

describe('promise tasks', () => {
	it('tracks a promise as RUNNING at once and records its result', async () => {
		const { manager, registry, events } = createManager();
		const work = deferred<string>();
		const runId = manager.startTask({ moduleId: 'm' }, work.promise);
		expect(events.names(runId)).toEqual(['queued', 'started']);
		expect((await manager.getRun(runId))!.status).toBe('running');
		expect(manager.getStats()).toMatchObject({ queued: 0, running: 1 });
		await manager.flush();
		work.resolve('from a promise');
		expect(await manager.waitForRun(runId, { timeoutMs: 2000 })).toMatchObject({ status: 'completed', result: 'from a promise' });
		expect(await registry.getRun(runId)).toMatchObject({ status: 'completed', result: 'from a promise' });
	});

	it('records a rejected promise as FAILED', async () => {
		const { manager, registry } = createManager();
		const work = deferred<string>();
		const runId = manager.startTask({ moduleId: 'm' }, work.promise);
		await manager.flush();
		work.reject(new Error('promise failed'));
		expect(await manager.waitForRun(runId, { timeoutMs: 2000 })).toMatchObject({ status: 'failed', error: { name: 'Error', message: 'promise failed' } });
		expect(await registry.getRun(runId)).toMatchObject({ status: 'failed' });
	});

	it('accepts a PromiseLike that is not a native promise', async () => {
		const { manager } = createManager();
		const thenable: PromiseLike<number> = {
			then(onFulfilled, onRejected) {
				return Promise.resolve(5).then(onFulfilled, onRejected);
			},
		};
		const runId = manager.startTask({ moduleId: 'm' }, thenable);
		expect(await manager.waitForRun(runId, { timeoutMs: 2000 })).toMatchObject({ status: 'completed', result: 5 });
	});
});

describe('adopted runs', () => {
	function queuedRun(runId: string, createdAt = Date.now()): Run {
		return { runId, moduleId: 'import', status: 'queued', priority: 'normal', parameters: { file: 'a.csv' }, createdAt, updatedAt: createdAt };
	}

	it('executes a QUEUED run added to the registry beforehand without adding a second record', async () => {
		const { manager, registry } = createManager();
		const run = queuedRun('adopted-1');
		await registry.addRun(run);
		const task = controlledTask();
		expect(manager.startTask(run, task.fn)).toBe('adopted-1');
		const ctx = await task.called;
		expect(ctx.parameters).toEqual({ file: 'a.csv' });
		task.done.resolve('imported');
		await manager.waitAll();

		const page = await manager.listRuns();
		expect(page.runs).toHaveLength(1);
		expect(page.runs[0]).toMatchObject({ runId: 'adopted-1', status: 'completed', result: 'imported', createdAt: run.createdAt });
	});

	it('takes the timeoutMs of an adopted run', async () => {
		const { manager, registry } = createManager();
		const run = queuedRun('adopted-timeout');
		await registry.addRun(run);
		const task = controlledTask();
		manager.startTask({ ...run, timeoutMs: 20 }, task.fn);
		expect(await manager.waitForRun('adopted-timeout', { timeoutMs: 2000 })).toMatchObject({ status: 'failed', error: { name: 'TimeoutError' } });
		await manager.waitAll({ timeoutMs: 100 });
		expect((await registry.getRun('adopted-timeout'))!.status).toBe('failed');
	});

	it('refuses a whole run that is not QUEUED with a ValidationError', () => {
		const { manager } = createManager();
		const run = { ...queuedRun('adopted-running'), status: 'running' as const };
		const error = thrown(() => manager.startTask(run, () => 1));
		expect(error).toBeInstanceOf(ValidationError);
		expect((error as ValidationError).field).toBe('run.status');
	});
});

describe('getStats, getRun, listRuns, waitForRun', () => {
	it('counts queued, running, completed, failed and cancelled runs', async () => {
		const { manager } = createManager({ concurrency: 2 });
		const ok = controlledTask();
		const bad = controlledTask();
		const waiting = controlledTask();
		const okId = manager.startTask({ moduleId: 'm' }, ok.fn);
		const badId = manager.startTask({ moduleId: 'm' }, bad.fn);
		const waitingId = manager.startTask({ moduleId: 'm' }, waiting.fn);
		await Promise.all([ok.called, bad.called]);
		expect(manager.getStats()).toMatchObject({ queued: 1, running: 2, draining: 0, completed: 0, failed: 0, cancelled: 0 });

		expect(await manager.cancelTask(waitingId)).toBe(true);
		ok.done.resolve(undefined);
		bad.done.reject(new Error('x'));
		await manager.waitForRun(okId, { timeoutMs: 2000 });
		await manager.waitForRun(badId, { timeoutMs: 2000 });
		await manager.waitAll();
		expect(manager.getStats()).toEqual({ queued: 0, running: 0, draining: 0, completed: 1, failed: 1, cancelled: 1, pendingWrites: 0 });
		expect(manager.getActiveTaskCount()).toBe(0);
		expect(manager.getActiveTaskIds()).toEqual([]);
	});

	it('getRun returns the manager view of an active run and the registry record of a finished one', async () => {
		const { manager } = createManager();
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		expect(await manager.getRun(runId)).toMatchObject({ runId, status: 'queued' });
		await task.called;
		expect(await manager.getRun(runId)).toMatchObject({ runId, status: 'running' });
		task.done.resolve('r');
		await manager.waitAll();
		expect(await manager.getRun(runId)).toMatchObject({ runId, status: 'completed', result: 'r' });
		expect(await manager.getRun('no-such-run')).toBeUndefined();
	});

	it('listRuns filters by status, module and item', async () => {
		const { manager } = createManager();
		const tasks = [controlledTask(), controlledTask(), controlledTask()];
		manager.startTask({ runId: 'a', moduleId: 'video', itemId: 'doc-1' }, tasks[0]!.fn);
		manager.startTask({ runId: 'b', moduleId: 'image', itemId: 'doc-1' }, tasks[1]!.fn);
		manager.startTask({ runId: 'c', moduleId: 'video', itemId: 'doc-2' }, tasks[2]!.fn);
		await Promise.all(tasks.map((task) => task.called));
		tasks[0]!.done.resolve(undefined);
		await manager.waitForRun('a', { timeoutMs: 2000 });
		await manager.flush();

		const ids = async (query: Parameters<BackgroundTaskManager['listRuns']>[0]) =>
			(await manager.listRuns(query)).runs.map((run) => run.runId).sort();
		expect(await ids({})).toEqual(['a', 'b', 'c']);
		expect(await ids({ moduleId: 'video' })).toEqual(['a', 'c']);
		expect(await ids({ itemId: 'doc-1' })).toEqual(['a', 'b']);
		expect(await ids({ status: 'running' })).toEqual(['b', 'c']);
		expect(await ids({ status: ['completed'] })).toEqual(['a']);
		tasks[1]!.done.resolve(undefined);
		tasks[2]!.done.resolve(undefined);
	});

	it('waitForRun resolves with the terminal run once it is written', async () => {
		const { manager, registry } = createManager();
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		const waiting = manager.waitForRun(runId);
		await task.called;
		task.done.resolve('value');
		const run = await waiting;
		expect(run).toMatchObject({ status: 'completed', result: 'value' });
		expect(await registry.getRun(runId)).toMatchObject({ status: 'completed', result: 'value' });
	});

	it('waitForRun resolves at once for a run that ended long ago', async () => {
		const { manager } = createManager();
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		await task.called;
		task.done.resolve('old');
		await manager.waitAll();
		expect(await manager.waitForRun(runId, { timeoutMs: 100 })).toMatchObject({ status: 'completed', result: 'old' });
	});

	it('waitForRun rejects with a RunNotFoundError for an unknown run', async () => {
		const { manager } = createManager();
		const error = await rejection(manager.waitForRun('missing'));
		expect(error).toBeInstanceOf(RunNotFoundError);
		expect((error as RunNotFoundError).runId).toBe('missing');
	});

	it('waitForRun rejects with a TimeoutError when the run does not end in time', async () => {
		const { manager } = createManager();
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		const error = await rejection(manager.waitForRun(runId, { timeoutMs: 30 }));
		expect(error).toBeInstanceOf(TimeoutError);
		expect((error as TimeoutError).timeoutMs).toBe(30);
		expect(manager.isTaskActive(runId)).toBe(true);
	});

	it('waitForRun follows a run executed elsewhere by polling the registry', async () => {
		const { manager, registry } = createManager();
		const now = Date.now();
		await registry.addRun({ runId: 'elsewhere', moduleId: 'm', status: 'queued', priority: 'normal', parameters: {}, createdAt: now, updatedAt: now });
		setTimeout(() => {
			void registry
				.updateRun('elsewhere', { status: 'running', startedAt: Date.now() })
				.then(() => registry.updateRun('elsewhere', { status: 'completed', completedAt: Date.now(), result: 9 }));
		}, 20);
		expect(await manager.waitForRun('elsewhere', { timeoutMs: 3000 })).toMatchObject({ status: 'completed', result: 9 });
	});
});

describe('options', () => {
	const cases: Array<[string, BackgroundTaskManagerOptions, string, string]> = [
		['concurrency 0', { concurrency: 0 }, 'concurrency', 'Expected `concurrency` to be an integer ≥ 1 or Infinity, got number 0'],
		['concurrency 1.5', { concurrency: 1.5 }, 'concurrency', 'Expected `concurrency` to be an integer ≥ 1 or Infinity, got number 1.5'],
		['concurrency NaN', { concurrency: Number.NaN }, 'concurrency', 'Expected `concurrency` to be an integer ≥ 1 or Infinity, got number NaN'],
		['a concurrencyByModule limit of 0', { concurrencyByModule: { video: 0 } }, 'concurrencyByModule.video', 'Expected `concurrencyByModule.video` to be an integer ≥ 1 or Infinity, got number 0'],
		['concurrencyByModule null', { concurrencyByModule: null as never }, 'concurrencyByModule', 'Expected `concurrencyByModule` to be an object of module id → limit, got null'],
		['maxQueued -1', { maxQueued: -1 }, 'maxQueued', 'Expected `maxQueued` to be an integer ≥ 0 or Infinity, got number -1'],
		['defaultTimeoutMs 0', { defaultTimeoutMs: 0 }, 'defaultTimeoutMs', 'Expected `defaultTimeoutMs` to be a number of milliseconds from 1 to 2147483647, got number 0'],
		['defaultTimeoutMs above the timer limit', { defaultTimeoutMs: 2_147_483_648 }, 'defaultTimeoutMs', 'Expected `defaultTimeoutMs` to be a number of milliseconds from 1 to 2147483647, got number 2147483648'],
		['progressThrottleMs -1', { progressThrottleMs: -1 }, 'progressThrottleMs', 'Expected `progressThrottleMs` to be a number from 0 to 2147483647, got number -1'],
		['an empty instanceId', { instanceId: '' }, 'instanceId', 'Expected `instanceId` to be a string of 1 to 256 printable characters, got string ""'],
		['retention.maxAgeMs -1', { retention: { maxAgeMs: -1 } }, 'retention.maxAgeMs', 'Expected `retention.maxAgeMs` to be a finite number ≥ 0, got number -1'],
		['retention.sweepIntervalMs 0', { retention: { maxAgeMs: 10, sweepIntervalMs: 0 } }, 'retention.sweepIntervalMs', 'Expected `retention.sweepIntervalMs` to be a number of milliseconds from 1 to 2147483647, got number 0'],
		['a logger without error()', { logger: { debug() {}, info() {}, warn() {} } as never }, 'logger.error', 'Expected `logger.error` to be a function, got undefined'],
	];

	it.each(cases)('refuses %s with a ValidationError stating expected and actual', (_name, options, field, message) => {
		const error = thrown(() => new BackgroundTaskManager(new MemoryRunRegistry(), options));
		expect(error).toBeInstanceOf(ValidationError);
		expect((error as ValidationError).field).toBe(field);
		expect((error as ValidationError).message).toBe(message);
	});

	it('refuses a registry that lacks a method', () => {
		const registry = new MemoryRunRegistry();
		const broken = { addRun: registry.addRun.bind(registry), getRun: registry.getRun.bind(registry) };
		const error = thrown(() => new BackgroundTaskManager(broken as never));
		expect(error).toBeInstanceOf(ValidationError);
		expect((error as ValidationError).field).toBe('registry.updateRun');
	});

	it('accepts Infinity limits', () => {
		expect(() => createManager({ concurrency: Number.POSITIVE_INFINITY, maxQueued: Number.POSITIVE_INFINITY, concurrencyByModule: { a: Number.POSITIVE_INFINITY } })).not.toThrow();
	});

	it('records instanceId as the ownerId of the runs it executes', async () => {
		const { manager, registry } = createManager({ instanceId: 'worker-7' });
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		await task.called;
		task.done.resolve(undefined);
		await manager.waitAll();
		expect((await registry.getRun(runId))!.ownerId).toBe('worker-7');
		expect((await manager.listRuns({ ownerId: 'worker-7' })).runs.map((run) => run.runId)).toEqual([runId]);
		expect((await manager.listRuns({ ownerId: 'worker-8' })).runs).toEqual([]);
	});
});

describe('retention', () => {
	it('removes old terminal runs from the registry in a periodic sweep and keeps active ones', async () => {
		const { manager, registry } = createManager({ retention: { maxAgeMs: 20, sweepIntervalMs: 15 } });
		const done = controlledTask();
		const active = controlledTask();
		const doneId = manager.startTask({ moduleId: 'm' }, done.fn);
		const activeId = manager.startTask({ moduleId: 'm' }, active.fn);
		await Promise.all([done.called, active.called]);
		done.done.resolve('x');
		await manager.waitForRun(doneId, { timeoutMs: 2000 });
		await manager.flush();
		expect((await registry.getRun(doneId))!.status).toBe('completed');

		await until(async () => (await registry.getRun(doneId)) === undefined, 'the sweep to remove the finished run');
		expect((await registry.getRun(activeId))!.status).toBe('running');
		active.done.resolve(undefined);
	});

	it('does not sweep without a retention option', async () => {
		const { manager, registry } = createManager();
		const runId = manager.startTask({ moduleId: 'm' }, async () => {
			await sleep(1);
			return 1;
		});
		await manager.waitAll();
		await sleep(50);
		expect(await registry.getRun(runId)).toBeDefined();
	});
});

describe('cancellation reason on the signal', () => {
	it('aborts with a CancelledError whose reason is the string given', async () => {
		const { manager } = createManager();
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		const ctx = await task.called;
		await manager.cancelTask(runId, 'user clicked stop');
		expect(ctx.signal.reason).toBeInstanceOf(CancelledError);
		expect((ctx.signal.reason as CancelledError).reason).toBe('user clicked stop');
	});
});
