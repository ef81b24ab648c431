/**
 * BackgroundTaskManager cancellation: cancelTask and cancelItemTasks of queued, running,
 * finished and unknown runs, cancel racing completion, and slots held by draining tasks.
 */
import { describe, expect, it } from 'vitest';
import { CancelledError, TimeoutError, ValidationError, type Run } from '../src/index.js';
import { deferred, sleep, tick } from './support/deferred.js';
import { createManager, shutdownManagersAfterEach } from './support/harness.js';
import { controlledTask } from './support/tasks.js';

shutdownManagersAfterEach();

function storedRun(runId: string, itemId: string, status: 'queued' | 'running' = 'queued'): Run {
	const now = Date.now();
	return {
		runId,
		moduleId: 'remote',
		itemId,
		status,
		priority: 'normal',
		parameters: {},
		createdAt: now,
		updatedAt: now,
		...(status === 'running' ? { startedAt: now } : {}),
	};
}

describe('cancelTask of a queued run', () => {
	it('records CANCELLED at once and never calls its function', async () => {
		const { manager, registry, events } = createManager({ concurrency: 1 });
		const blocker = controlledTask();
		const queued = controlledTask();
		manager.startTask({ moduleId: 'm' }, blocker.fn);
		const runId = manager.startTask({ moduleId: 'm' }, queued.fn);
		await blocker.called;

		expect(await manager.cancelTask(runId, 'not needed')).toBe(true);
		expect((await manager.getRun(runId))!.status).toBe('cancelled');
		expect(manager.isTaskActive(runId)).toBe(false);
		expect(manager.getStats()).toMatchObject({ queued: 0, running: 1, cancelled: 1 });
		expect(events.names(runId)).toEqual(['queued', 'cancelled']);

		blocker.done.resolve(undefined);
		await manager.waitAll();
		expect(queued.calls).toBe(0);
		const stored = await registry.getRun(runId);
		expect(stored).toMatchObject({ status: 'cancelled', error: { name: 'CancelledError', message: `Run "${runId}" was cancelled: not needed` } });
		expect(stored!.startedAt).toBeUndefined();
		expect(typeof stored!.completedAt).toBe('number');
	});

	it('cancels a run in the same tick as startTask, before anything was written', async () => {
		const { manager, registry, events } = createManager();
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		expect(await manager.cancelTask(runId)).toBe(true);
		await manager.waitAll();
		expect(task.calls).toBe(0);
		expect(events.names(runId)).toEqual(['queued', 'cancelled']);
		expect(await registry.getRun(runId)).toMatchObject({ status: 'cancelled', error: { name: 'CancelledError', message: `Run "${runId}" was cancelled` } });
		expect((await manager.listRuns()).runs).toHaveLength(1);
	});

	it('never calls the function of a run cancelled by a `started` listener', async () => {
		const { manager, registry } = createManager();
		const task = controlledTask();
		let result: Promise<boolean> | undefined;
		manager.on('started', (run) => {
			result = manager.cancelTask(run.runId, 'changed my mind');
		});
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		await manager.waitAll();
		expect(await result).toBe(true);
		expect(task.calls).toBe(0);
		expect((await registry.getRun(runId))!.status).toBe('cancelled');
	});
});

describe('cancelTask of a running run', () => {
	it('aborts the signal with a CancelledError carrying the reason and records CANCELLED at once', async () => {
		const { manager, registry, events } = createManager();
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		const ctx = await task.called;
		await manager.flush();

		expect(await manager.cancelTask(runId, 'user pressed stop')).toBe(true);
		expect(ctx.signal.aborted).toBe(true);
		expect(ctx.signal.reason).toBeInstanceOf(CancelledError);
		expect((ctx.signal.reason as CancelledError).reason).toBe('user pressed stop');
		expect((ctx.signal.reason as CancelledError).runId).toBe(runId);
		const run = await manager.getRun(runId);
		expect(run).toMatchObject({ status: 'cancelled', error: { name: 'CancelledError', message: `Run "${runId}" was cancelled: user pressed stop` } });
		expect(manager.isTaskActive(runId)).toBe(false);
		expect(manager.getActiveTaskCount()).toBe(0);
		expect(events.names(runId)).toEqual(['queued', 'started', 'cancelled']);

		await manager.flush();
		expect(await registry.getRun(runId)).toMatchObject({ status: 'cancelled', error: { name: 'CancelledError' } });
		task.done.resolve(undefined);
	});

	it('discards the late result of a cancelled task', async () => {
		const { manager, registry, events } = createManager();
		const task = controlledTask<string>();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		await task.called;
		await manager.cancelTask(runId);
		task.done.resolve('late result');
		await manager.waitAll();
		const stored = await registry.getRun(runId);
		expect(stored!.status).toBe('cancelled');
		expect(stored!.result).toBeUndefined();
		expect(events.names(runId)).toEqual(['queued', 'started', 'cancelled']);
		expect(manager.getStats()).toMatchObject({ completed: 0, failed: 0, cancelled: 1 });
	});

	it('discards the error a cancelled task throws while unwinding', async () => {
		const { manager, registry, events } = createManager();
		const runId = manager.startTask({ moduleId: 'm' }, (ctx) => {
			return new Promise((_resolve, reject) => {
				ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error), { once: true });
			});
		});
		await tick();
		await manager.flush();
		expect(await manager.cancelTask(runId, 'stop')).toBe(true);
		await manager.waitAll();
		expect(events.names(runId)).toEqual(['queued', 'started', 'cancelled']);
		expect(await registry.getRun(runId)).toMatchObject({ status: 'cancelled', error: { name: 'CancelledError', message: `Run "${runId}" was cancelled: stop` } });
		expect(manager.getStats()).toMatchObject({ failed: 0, cancelled: 1, draining: 0 });
	});

	it('discards the result of a task that cancels itself and then returns', async () => {
		const { manager, registry } = createManager();
		let selfCancel: Promise<boolean> | undefined;
		const runId = manager.startTask({ moduleId: 'm' }, async (ctx) => {
			selfCancel = manager.cancelTask(ctx.runId, 'self');
			return 'ignored';
		});
		await manager.waitAll();
		expect(await selfCancel).toBe(true);
		expect(await registry.getRun(runId)).toMatchObject({ status: 'cancelled' });
		expect((await registry.getRun(runId))!.result).toBeUndefined();
	});

	it('cancels a promise task and discards what the promise resolves later', async () => {
		const { manager, registry, events } = createManager();
		const work = deferred<string>();
		const runId = manager.startTask({ moduleId: 'm' }, work.promise);
		expect(await manager.cancelTask(runId)).toBe(true);
		work.resolve('too late');
		await manager.waitAll();
		expect(events.names(runId)).toEqual(['queued', 'started', 'cancelled']);
		expect((await registry.getRun(runId))!.status).toBe('cancelled');
	});
});

describe('the signal and the recorded error of a cancel or a timeout', () => {
	it('fires the abort event on a signal read before the cancel, and hands an already aborted one to a task that reads it only after', async () => {
		const { manager } = createManager();
		const early = controlledTask();
		const late = controlledTask();
		const earlyId = manager.startTask({ moduleId: 'm' }, early.fn);
		const lateId = manager.startTask({ moduleId: 'm' }, late.fn);
		const earlyContext = await early.called;
		const lateContext = await late.called;
		const heard: unknown[] = [];
		earlyContext.signal.addEventListener('abort', () => heard.push(earlyContext.signal.reason));

		await manager.cancelTask(earlyId, 'first');
		await manager.cancelTask(lateId, 'second');
		expect(heard).toHaveLength(1);
		expect(heard[0]).toMatchObject({ name: 'CancelledError', runId: earlyId, reason: 'first' });
		// Never read before the cancel: made aborted on first read, with the cancel's reason.
		expect(lateContext.signal.aborted).toBe(true);
		expect(() => lateContext.signal.throwIfAborted()).toThrow(CancelledError);
		expect(lateContext.signal.reason).toMatchObject({ runId: lateId, reason: 'second' });
		// The same signal on every read.
		expect(lateContext.signal).toBe(lateContext.signal);
		early.done.resolve(undefined);
		late.done.resolve(undefined);
		await manager.waitAll();
	});

	it('hands a task that reads its signal only after its timeout a signal aborted with the TimeoutError', async () => {
		const { manager } = createManager();
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm', timeoutMs: 20 }, task.fn);
		const context = await task.called;
		await sleep(60);
		expect((await manager.getRun(runId))?.status).toBe('failed');
		expect(context.signal.aborted).toBe(true);
		expect(context.signal.reason).toBeInstanceOf(TimeoutError);
		task.done.resolve(undefined);
		await manager.waitAll();
	});

	it('aborts signals with errors whose stack is only their name and message, and leaves Error.stackTraceLimit as the host set it', async () => {
		const { manager } = createManager({ concurrency: 3 });
		const cancelled = controlledTask();
		const timed = controlledTask();
		const atShutdown = controlledTask();
		const cancelledId = manager.startTask({ moduleId: 'm' }, cancelled.fn);
		manager.startTask({ moduleId: 'm', timeoutMs: 20 }, timed.fn);
		manager.startTask({ moduleId: 'm' }, atShutdown.fn);
		const signals = await Promise.all([cancelled.called, timed.called, atShutdown.called].map(async (called) => (await called).signal));
		const hostLimit = Error.stackTraceLimit;
		Error.stackTraceLimit = 7;
		try {
			await manager.cancelTask(cancelledId, 'by hand');
			await sleep(60);
			signals[2]!.addEventListener('abort', () => atShutdown.done.resolve(undefined));
			cancelled.done.resolve(undefined);
			timed.done.resolve(undefined);
			await manager.shutdown({ graceMs: 0, abortGraceMs: 1_000 });
			const reasons = signals.map((signal) => signal.reason as Error);
			expect(reasons.map((reason) => reason.name)).toEqual(['CancelledError', 'TimeoutError', 'CancelledError']);
			for (const reason of reasons) expect(reason.stack).toBe(`${reason.name}: ${reason.message}`);
			expect(Error.stackTraceLimit).toBe(7);
			// Errors the host makes meanwhile keep their frames.
			expect(new Error('host').stack?.split('\n').length).toBeGreaterThan(1);
		} finally {
			Error.stackTraceLimit = hostLimit;
		}
	});

	it('records a cancel (queued or running), a timeout and a cancel at shutdown as name, message and code, without a stack that would point into runledger', async () => {
		const { manager, registry } = createManager({ concurrency: 2 });
		const running = controlledTask();
		const timed = controlledTask();
		const atShutdown = controlledTask();
		const runningId = manager.startTask({ moduleId: 'm' }, running.fn);
		const timedId = manager.startTask({ moduleId: 'm', timeoutMs: 20 }, timed.fn);
		const queuedId = manager.startTask({ moduleId: 'm' }, controlledTask().fn);
		await running.called;
		await manager.cancelTask(queuedId, 'queued');
		await manager.cancelTask(runningId, 'running');
		await sleep(60);
		// Both slots are still held by the two draining functions: let them end.
		running.done.resolve(undefined);
		timed.done.resolve(undefined);
		const shutdownId = manager.startTask({ moduleId: 'm' }, atShutdown.fn);
		(await atShutdown.called).signal.addEventListener('abort', () => atShutdown.done.resolve(undefined));
		await manager.shutdown({ graceMs: 0, abortGraceMs: 1_000 });

		const errors = Object.fromEntries(await Promise.all([queuedId, runningId, timedId, shutdownId].map(async (runId) => [runId, (await registry.getRun(runId))?.error])));
		expect(errors).toEqual({
			[queuedId]: { name: 'CancelledError', message: `Run "${queuedId}" was cancelled: queued`, code: 'ERR_CANCELLED' },
			[runningId]: { name: 'CancelledError', message: `Run "${runningId}" was cancelled: running`, code: 'ERR_CANCELLED' },
			[timedId]: { name: 'TimeoutError', message: `Run "${timedId}" timed out after 20 ms`, code: 'ERR_TIMEOUT' },
			[shutdownId]: { name: 'CancelledError', message: `Run "${shutdownId}" was cancelled: shutdown`, code: 'ERR_CANCELLED' },
		});
	});
});

describe('cancelTask of finished and unknown runs', () => {
	it('returns false for an unknown run', async () => {
		const { manager } = createManager();
		expect(await manager.cancelTask('never-started')).toBe(false);
		expect(manager.getStats().cancelled).toBe(0);
	});

	it('returns false for a run that completed, and leaves it COMPLETED', async () => {
		const { manager, registry, events } = createManager();
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		await task.called;
		task.done.resolve('done');
		await manager.waitForRun(runId, { timeoutMs: 2000 });
		expect(await manager.cancelTask(runId)).toBe(false);
		await manager.waitAll();
		expect(await manager.cancelTask(runId)).toBe(false);
		expect(await registry.getRun(runId)).toMatchObject({ status: 'completed', result: 'done' });
		expect(events.names(runId)).toEqual(['queued', 'started', 'completed']);
	});

	it('returns false for a run that failed', async () => {
		const { manager, registry } = createManager();
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		await task.called;
		task.done.reject(new Error('x'));
		await manager.waitAll();
		expect(await manager.cancelTask(runId)).toBe(false);
		expect((await registry.getRun(runId))!.status).toBe('failed');
	});

	it('returns true once and then false for a run cancelled twice', async () => {
		const { manager, events } = createManager();
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		await task.called;
		const [first, second] = await Promise.all([manager.cancelTask(runId, 'one'), manager.cancelTask(runId, 'two')]);
		expect([first, second]).toEqual([true, false]);
		expect(events.count('cancelled')).toBe(1);
		expect((await manager.getRun(runId))!.error!.message).toBe(`Run "${runId}" was cancelled: one`);
		task.done.resolve(undefined);
	});

	it('returns false for a run that timed out', async () => {
		const { manager } = createManager();
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm', timeoutMs: 10 }, task.fn);
		await manager.waitForRun(runId, { timeoutMs: 2000 });
		expect(await manager.cancelTask(runId)).toBe(false);
		expect((await manager.getRun(runId))!.error!.name).toBe('TimeoutError');
		task.done.resolve(undefined);
	});

	it('cancels a QUEUED run that only the registry holds, with a compare-and-set', async () => {
		const { manager, registry, events } = createManager();
		await registry.addRun(storedRun('elsewhere', 'doc-9'));
		expect(await manager.cancelTask('elsewhere', 'admin')).toBe(true);
		expect(await registry.getRun('elsewhere')).toMatchObject({ status: 'cancelled', error: { name: 'CancelledError', message: 'Run "elsewhere" was cancelled: admin' } });
		expect(events.names('elsewhere')).toEqual(['cancelled']);
		expect(await manager.cancelTask('elsewhere')).toBe(false);
	});

	it('rejects a runId that is not a string with a ValidationError', async () => {
		const { manager } = createManager();
		await expect(manager.cancelTask(42 as never)).rejects.toBeInstanceOf(ValidationError);
		await expect(manager.cancelTask('x', 7 as never)).rejects.toBeInstanceOf(ValidationError);
	});
});

describe('cancel racing completion', () => {
	it('cancel wins when it is called before the resolved result is seen', async () => {
		const { manager, registry, events } = createManager();
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		await task.called;
		task.done.resolve('result');
		const cancelled = await manager.cancelTask(runId);
		await manager.waitAll();
		expect(cancelled).toBe(true);
		expect(events.terminal(runId).map((recorded) => recorded.event)).toEqual(['cancelled']);
		expect((await registry.getRun(runId))!.status).toBe('cancelled');
	});

	it('completion wins when it settled before the cancel', async () => {
		const { manager, registry, events } = createManager();
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		await task.called;
		task.done.resolve('result');
		await tick();
		const cancelled = await manager.cancelTask(runId);
		await manager.waitAll();
		expect(cancelled).toBe(false);
		expect(events.terminal(runId).map((recorded) => recorded.event)).toEqual(['completed']);
		expect((await registry.getRun(runId))!.status).toBe('completed');
	});

	it('ends every run in exactly one terminal state, CANCELLED exactly when cancelTask returned true', async () => {
		const { manager, registry, events } = createManager();
		const count = 40;
		const tasks = Array.from({ length: count }, () => controlledTask());
		const ids = tasks.map((task) => manager.startTask({ moduleId: 'm' }, task.fn));
		await Promise.all(tasks.map((task) => task.called));
		await manager.flush();

		const results: Array<Promise<boolean>> = [];
		for (let index = 0; index < count; index++) {
			const task = tasks[index]!;
			const runId = ids[index]!;
			switch (index % 4) {
				case 0:
					task.done.resolve(index);
					results.push(manager.cancelTask(runId));
					break;
				case 1:
					results.push(manager.cancelTask(runId));
					task.done.resolve(index);
					break;
				case 2:
					task.done.reject(new Error(`failed ${index}`));
					await Promise.resolve();
					results.push(manager.cancelTask(runId));
					break;
				default:
					task.done.resolve(index);
					await sleep(0);
					results.push(manager.cancelTask(runId));
			}
		}

		const cancelled = await Promise.all(results);
		await manager.waitAll();
		for (let index = 0; index < count; index++) {
			const runId = ids[index]!;
			const terminal = events.terminal(runId);
			expect(terminal).toHaveLength(1);
			const status = terminal[0]!.run.status;
			expect(cancelled[index]).toBe(status === 'cancelled');
			expect((await registry.getRun(runId))!.status).toBe(status);
		}

		const stats = manager.getStats();
		expect(stats.completed + stats.failed + stats.cancelled).toBe(count);
		expect(stats.cancelled).toBe(cancelled.filter(Boolean).length);
		// Cancelled before the task's result could be seen: these always end CANCELLED.
		expect(cancelled.filter((_value, index) => index % 4 === 1).every(Boolean)).toBe(true);
		// Completed a macrotask before the cancel: these always end COMPLETED.
		expect(cancelled.filter((_value, index) => index % 4 === 3).some(Boolean)).toBe(false);
	});
});

describe('draining slots', () => {
	it('keeps the slot of a cancelled task until its function settles', async () => {
		const { manager, events } = createManager({ concurrency: 1 });
		const stubborn = controlledTask();
		const next = controlledTask();
		const stubbornId = manager.startTask({ moduleId: 'm' }, stubborn.fn);
		const nextId = manager.startTask({ moduleId: 'm' }, next.fn);
		await stubborn.called;

		expect(await manager.cancelTask(stubbornId)).toBe(true);
		expect(manager.getStats()).toMatchObject({ queued: 1, running: 0, draining: 1, cancelled: 1 });
		await sleep(30);
		expect(next.calls).toBe(0);
		expect((await manager.getRun(nextId))!.status).toBe('queued');

		stubborn.done.resolve('ignored');
		await next.called;
		expect(manager.getStats()).toMatchObject({ queued: 0, running: 1, draining: 0 });
		expect(events.names(stubbornId)).toEqual(['queued', 'started', 'cancelled']);
		next.done.resolve(undefined);
	});

	it('keeps the module slot of a cancelled task until its function settles', async () => {
		const { manager } = createManager({ concurrencyByModule: { video: 1 } });
		const stubborn = controlledTask();
		const next = controlledTask();
		const other = controlledTask();
		const stubbornId = manager.startTask({ moduleId: 'video' }, stubborn.fn);
		manager.startTask({ moduleId: 'video' }, next.fn);
		await stubborn.called;
		await manager.cancelTask(stubbornId);
		manager.startTask({ moduleId: 'image' }, other.fn);
		await other.called;
		await sleep(20);
		expect(next.calls).toBe(0);

		stubborn.done.reject(new Error('unwound'));
		await next.called;
		next.done.resolve(undefined);
		other.done.resolve(undefined);
	});

	it('waitAll waits for a cancelled task that is still unwinding', async () => {
		const { manager } = createManager();
		const stubborn = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, stubborn.fn);
		await stubborn.called;
		await manager.cancelTask(runId);
		expect(await manager.waitAll({ timeoutMs: 40 })).toEqual({ settled: false, pending: [runId] });
		stubborn.done.resolve(undefined);
		expect(await manager.waitAll({ timeoutMs: 2000 })).toEqual({ settled: true, pending: [] });
		expect(manager.getStats().draining).toBe(0);
	});
});

describe('cancelItemTasks', () => {
	it('cancels every queued and running run of the item and returns how many', async () => {
		const { manager, registry, events } = createManager({ concurrency: 2 });
		const tasks = Array.from({ length: 5 }, () => controlledTask());
		const finishedId = manager.startTask({ moduleId: 'm', itemId: 'doc-1' }, tasks[0]!.fn);
		await tasks[0]!.called;
		tasks[0]!.done.resolve('done');
		await manager.waitForRun(finishedId, { timeoutMs: 2000 });

		const running = manager.startTask({ moduleId: 'm', itemId: 'doc-1' }, tasks[1]!.fn);
		const otherItem = manager.startTask({ moduleId: 'm', itemId: 'doc-2' }, tasks[2]!.fn);
		const queued1 = manager.startTask({ moduleId: 'm', itemId: 'doc-1' }, tasks[3]!.fn);
		const queued2 = manager.startTask({ moduleId: 'm', itemId: 'doc-1' }, tasks[4]!.fn);
		await Promise.all([tasks[1]!.called, tasks[2]!.called]);
		await manager.flush();

		expect(await manager.cancelItemTasks('doc-1', 'document deleted')).toBe(3);
		for (const runId of [running, queued1, queued2]) {
			expect((await manager.getRun(runId))!.error!.message).toBe(`Run "${runId}" was cancelled: document deleted`);
		}

		expect(tasks[1]!.context!.signal.aborted).toBe(true);
		expect(manager.isTaskActive(otherItem)).toBe(true);
		tasks[1]!.done.resolve(undefined);
		tasks[2]!.done.resolve(undefined);
		await manager.waitAll();
		expect(tasks[3]!.calls + tasks[4]!.calls).toBe(0);
		expect((await registry.getRun(finishedId))!.status).toBe('completed');
		expect((await registry.getRun(otherItem))!.status).toBe('completed');
		for (const runId of [running, queued1, queued2]) expect((await registry.getRun(runId))!.status).toBe('cancelled');
		expect(events.count('cancelled')).toBe(3);
	});

	it('also cancels active runs of the item that only the registry holds', async () => {
		const { manager, registry } = createManager();
		await registry.addRun(storedRun('remote-1', 'doc-5'));
		await registry.addRun(storedRun('remote-2', 'doc-5', 'running'));
		await registry.addRun(storedRun('remote-3', 'doc-6'));
		const local = controlledTask();
		const localId = manager.startTask({ moduleId: 'm', itemId: 'doc-5' }, local.fn);
		await local.called;
		await manager.flush();

		expect(await manager.cancelItemTasks('doc-5')).toBe(3);
		expect(local.context!.signal.aborted).toBe(true);
		local.done.resolve(undefined);
		await manager.waitAll();
		expect((await registry.getRun('remote-1'))!.status).toBe('cancelled');
		expect((await registry.getRun('remote-2'))!.status).toBe('cancelled');
		expect((await registry.getRun('remote-3'))!.status).toBe('queued');
		expect((await registry.getRun(localId))!.status).toBe('cancelled');
	});

	it('returns 0 for an item without active runs', async () => {
		const { manager } = createManager();
		const task = controlledTask();
		manager.startTask({ moduleId: 'm', itemId: 'doc-1' }, task.fn);
		expect(await manager.cancelItemTasks('doc-404')).toBe(0);
		expect(manager.getActiveTaskCount()).toBe(1);
	});

	it('does not count a run twice when its local cancel has not been written yet', async () => {
		const { manager, registry } = createManager();
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm', itemId: 'doc-1' }, task.fn);
		await task.called;
		await manager.flush();
		expect(await manager.cancelItemTasks('doc-1')).toBe(1);
		task.done.resolve(undefined);
		await manager.waitAll();
		expect((await registry.getRun(runId))!.status).toBe('cancelled');
		expect(manager.getStats().cancelled).toBe(1);
	});
});
