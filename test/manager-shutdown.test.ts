/**
 * BackgroundTaskManager waitAll, flush and shutdown, including tasks that ignore their signal.
 */
import { describe, expect, it } from 'vitest';
import { CancelledError, ShutdownError, ValidationError } from '../src/index.js';
import { never, sleep } from './support/deferred.js';
import { FlakyRegistry } from './support/flaky-registry.js';
import { createManager, shutdownManagersAfterEach } from './support/harness.js';
import { controlledTask } from './support/tasks.js';

shutdownManagersAfterEach();

describe('waitAll', () => {
	it('resolves settled with nothing pending when no task was started', async () => {
		const { manager } = createManager();
		expect(await manager.waitAll()).toEqual({ settled: true, pending: [] });
		expect(await manager.waitAll({ timeoutMs: 10 })).toEqual({ settled: true, pending: [] });
	});

	it('resolves once every task started so far settled and its final state is written', async () => {
		const { manager, registry } = createManager({ concurrency: 2 });
		const tasks = Array.from({ length: 4 }, () => controlledTask());
		const ids = tasks.map((task, index) => manager.startTask({ runId: `run-${index}`, moduleId: 'm' }, task.fn));
		let resolved = false;
		const waiting = manager.waitAll().then((report) => {
			resolved = true;
			return report;
		});
		await Promise.all([tasks[0]!.called, tasks[1]!.called]);
		tasks[0]!.done.resolve(0);
		tasks[1]!.done.reject(new Error('one failed'));
		await tasks[2]!.called;
		await tasks[3]!.called;
		await sleep(10);
		expect(resolved).toBe(false);
		tasks[2]!.done.resolve(2);
		tasks[3]!.done.resolve(3);

		expect(await waiting).toEqual({ settled: true, pending: [] });
		const stored = await Promise.all(ids.map(async (runId) => (await registry.getRun(runId))!.status));
		expect(stored).toEqual(['completed', 'failed', 'completed', 'completed']);
		expect(manager.getStats()).toMatchObject({ pendingWrites: 0, queued: 0, running: 0 });
	});

	it('does not wait for tasks started after the call', async () => {
		const { manager } = createManager();
		const first = controlledTask();
		manager.startTask({ moduleId: 'm' }, first.fn);
		const waiting = manager.waitAll();
		const later = controlledTask();
		const laterId = manager.startTask({ moduleId: 'm' }, later.fn);
		await first.called;
		first.done.resolve(undefined);
		expect(await waiting).toEqual({ settled: true, pending: [] });
		expect(manager.isTaskActive(laterId)).toBe(true);
		later.done.resolve(undefined);
	});

	it('with a timeout always returns and names the runs still pending', async () => {
		const { manager } = createManager();
		const done = controlledTask();
		const stuck = controlledTask();
		manager.startTask({ runId: 'done', moduleId: 'm' }, done.fn);
		manager.startTask({ runId: 'stuck', moduleId: 'm' }, stuck.fn);
		await done.called;
		done.done.resolve(undefined);
		expect(await manager.waitAll({ timeoutMs: 40 })).toEqual({ settled: false, pending: ['stuck'] });
		stuck.done.resolve(undefined);
	});

	it('rejects a bad timeout with a ValidationError', async () => {
		const { manager } = createManager();
		await expect(manager.waitAll({ timeoutMs: 0 })).rejects.toBeInstanceOf(ValidationError);
	});
});

describe('flush', () => {
	it('has nothing to wait for with the in-memory registry: every change is written as it happens', async () => {
		const { manager, registry } = createManager();
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		expect(manager.getStats().pendingWrites).toBe(0);
		expect((await registry.getRun(runId))!.status).toBe('queued');
		await task.called;
		expect((await registry.getRun(runId))!.status).toBe('running');
		task.done.resolve('value');
		await manager.waitForRun(runId, { timeoutMs: 2000 });
		expect(manager.getStats().pendingWrites).toBe(0);
		expect(await registry.getRun(runId)).toMatchObject({ status: 'completed', result: 'value' });
	});

	it('resolves once the registry writes outstanding at the call are done', async () => {
		// An asynchronous registry: the in-memory one is written synchronously, with nothing outstanding.
		const { manager, registry } = createManager({}, new FlakyRegistry());
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		expect(manager.getStats().pendingWrites).toBe(1);
		await manager.flush();
		expect(await registry.getRun(runId)).toBeDefined();
		await task.called;
		await manager.flush();
		expect((await registry.getRun(runId))!.status).toBe('running');
		expect(manager.getStats().pendingWrites).toBe(0);

		task.done.resolve('value');
		await manager.waitForRun(runId, { timeoutMs: 2000 });
		await manager.flush();
		expect(await registry.getRun(runId)).toMatchObject({ status: 'completed', result: 'value' });
	});

	it('does not wait for task functions to settle', async () => {
		const { manager } = createManager();
		const task = controlledTask();
		manager.startTask({ moduleId: 'm' }, task.fn);
		await task.called;
		await manager.flush();
		expect(task.done.settled).toBe(false);
		task.done.resolve(undefined);
	});
});

describe('shutdown', () => {
	it('returns empty lists when nothing is active', async () => {
		const { manager } = createManager();
		expect(await manager.shutdown({ graceMs: 10, abortGraceMs: 10 })).toEqual({ finished: [], cancelled: [], timedOut: [], unsettled: [], unflushed: [] });
	});

	it('cancels queued runs, lets running ones finish within graceMs and reports them', async () => {
		const { manager, registry, events } = createManager({ concurrency: 2 });
		const quick = controlledTask();
		const alsoQuick = controlledTask();
		const queued = controlledTask();
		manager.startTask({ runId: 'quick', moduleId: 'm' }, quick.fn);
		manager.startTask({ runId: 'also-quick', moduleId: 'm' }, alsoQuick.fn);
		manager.startTask({ runId: 'queued', moduleId: 'm' }, queued.fn);
		await Promise.all([quick.called, alsoQuick.called]);

		const shutdown = manager.shutdown({ graceMs: 2000, abortGraceMs: 100 });
		expect(() => manager.startTask({ moduleId: 'm' }, () => 1)).toThrow(ShutdownError);
		expect((await manager.getRun('queued'))!.status).toBe('cancelled');
		quick.done.resolve('q');
		alsoQuick.done.reject(new Error('failed during grace'));

		const report = await shutdown;
		expect(report).toEqual({ finished: ['quick', 'also-quick'], cancelled: ['queued'], timedOut: [], unsettled: [], unflushed: [] });
		expect(queued.calls).toBe(0);
		expect(await registry.getRun('quick')).toMatchObject({ status: 'completed', result: 'q' });
		expect((await registry.getRun('also-quick'))!.status).toBe('failed');
		expect(await registry.getRun('queued')).toMatchObject({ status: 'cancelled', error: { name: 'CancelledError', message: 'Run "queued" was cancelled: shutdown' } });
		expect(events.names('queued')).toEqual(['queued', 'cancelled']);
	});

	it('cancels runs still running after graceMs with reason shutdown', async () => {
		const { manager, registry } = createManager();
		const slow = manager.startTask({ runId: 'slow', moduleId: 'm' }, (ctx) => {
			return new Promise((_resolve, reject) => {
				ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error), { once: true });
			});
		});
		await sleep(5);
		const report = await manager.shutdown({ graceMs: 30, abortGraceMs: 500 });
		expect(report).toEqual({ finished: [], cancelled: [slow], timedOut: [], unsettled: [], unflushed: [] });
		const stored = await registry.getRun(slow);
		expect(stored).toMatchObject({ status: 'cancelled', error: { name: 'CancelledError', message: 'Run "slow" was cancelled: shutdown' } });
		expect(manager.getStats()).toMatchObject({ running: 0, draining: 0, cancelled: 1 });
	});

	it('aborts the signal of a running task with a CancelledError whose reason is shutdown', async () => {
		const { manager } = createManager();
		const task = controlledTask();
		manager.startTask({ moduleId: 'm' }, task.fn);
		const ctx = await task.called;
		const shutdown = manager.shutdown({ graceMs: 10, abortGraceMs: 200 });
		await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
		expect(ctx.signal.reason).toBeInstanceOf(CancelledError);
		expect((ctx.signal.reason as CancelledError).reason).toBe('shutdown');
		task.done.resolve(undefined);
		expect((await shutdown).unsettled).toEqual([]);
	});

	it('records a task that ignores its abort FAILED with a ShutdownTimeoutError, returns in time and names it unsettled', async () => {
		const { manager, registry } = createManager();
		const stubbornId = manager.startTask({ runId: 'stubborn', moduleId: 'm' }, () => never());
		const politeId = manager.startTask({ runId: 'polite', moduleId: 'm' }, (ctx) => {
			return new Promise((_resolve, reject) => {
				ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error), { once: true });
			});
		});
		await sleep(5);
		const graceMs = 30;
		const abortGraceMs = 50;
		const started = Date.now();
		const report = await manager.shutdown({ graceMs, abortGraceMs });
		expect(Date.now() - started).toBeLessThan(graceMs + abortGraceMs + 2000);
		expect(report).toEqual({ finished: [], cancelled: [politeId], timedOut: [stubbornId], unsettled: [stubbornId], unflushed: [] });
		expect(await registry.getRun('stubborn')).toMatchObject({ status: 'failed', error: { name: 'ShutdownTimeoutError', message: `Run "stubborn" did not stop within ${abortGraceMs} ms of being aborted at shutdown` } });
		expect(await registry.getRun('polite')).toMatchObject({ status: 'cancelled', error: { name: 'CancelledError', message: 'Run "polite" was cancelled: shutdown' } });
		expect(manager.getStats()).toMatchObject({ draining: 1, cancelled: 1, failed: 1 });
	});

	it('with 100 runs, reports 50 finished, 40 cancelled and 10 timed out, leaves none RUNNING and returns within graceMs + abortGraceMs + 250 ms', async () => {
		const { manager, registry } = createManager({ concurrency: 100 });
		const graceMs = 200;
		const abortGraceMs = 200;
		const ids = { finish: [] as string[], honour: [] as string[], ignore: [] as string[] };
		for (let index = 0; index < 100; index++) {
			if (index < 50) ids.finish.push(manager.startTask({ runId: `finish-${index}`, moduleId: 'm' }, () => sleep(20 + (index % 10) * 5)));
			else if (index < 90) {
				ids.honour.push(
					manager.startTask({ runId: `honour-${index}`, moduleId: 'm' }, (ctx) => new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => setTimeout(() => reject(ctx.signal.reason as Error), 10), { once: true }))),
				);
			} else ids.ignore.push(manager.startTask({ runId: `ignore-${index}`, moduleId: 'm' }, () => never()));
		}

		await sleep(5);
		const started = Date.now();
		const report = await manager.shutdown({ graceMs, abortGraceMs });
		const elapsed = Date.now() - started;
		expect(elapsed).toBeLessThan(graceMs + abortGraceMs + 250);
		expect([report.finished.length, report.cancelled.length, report.timedOut.length]).toEqual([50, 40, 10]);
		expect(report.finished.sort()).toEqual(ids.finish.sort());
		expect(report.cancelled.sort()).toEqual(ids.honour.sort());
		expect(report.timedOut.sort()).toEqual(ids.ignore.sort());
		expect(report.unsettled.sort()).toEqual(ids.ignore.sort());
		expect(report.unflushed).toEqual([]);
		const statuses = await Promise.all([...ids.finish, ...ids.honour, ...ids.ignore].map(async (runId) => (await registry.getRun(runId))!.status));
		expect(statuses.filter((status) => status === 'completed')).toHaveLength(50);
		expect(statuses.filter((status) => status === 'cancelled')).toHaveLength(40);
		expect(statuses.filter((status) => status === 'failed')).toHaveLength(10);
		expect((await registry.listRuns({ status: ['queued', 'running'] })).runs).toEqual([]);
		for (const runId of ids.ignore) expect((await registry.getRun(runId))!.error?.name).toBe('ShutdownTimeoutError');
	});

	it('returns the same report object when called twice', async () => {
		const { manager } = createManager();
		const task = controlledTask();
		manager.startTask({ moduleId: 'm' }, task.fn);
		await task.called;
		const first = manager.shutdown({ graceMs: 10, abortGraceMs: 10 });
		const second = manager.shutdown({ graceMs: 5000, abortGraceMs: 5000 });
		const [a, b] = await Promise.all([first, second]);
		expect(b).toBe(a);
		expect(await manager.shutdown()).toBe(a);
		task.done.resolve(undefined);
	});

	it('refuses new tasks after it returned', async () => {
		const { manager } = createManager();
		await manager.shutdown({ graceMs: 0 });
		expect(() => manager.startTask({ moduleId: 'm' }, () => 1)).toThrow(ShutdownError);
		expect(() => manager.startTask({ moduleId: 'm' }, Promise.resolve(1))).toThrow(ShutdownError);
	});

	it('refuses a task started by a listener of the cancellations shutdown makes', async () => {
		const { manager } = createManager({ concurrency: 1 });
		const running = controlledTask();
		manager.startTask({ moduleId: 'm' }, running.fn);
		manager.startTask({ runId: 'queued', moduleId: 'm' }, controlledTask().fn);
		await running.called;
		const thrown: unknown[] = [];
		let accepted: string | undefined;
		manager.on('cancelled', (run) => {
			if (run.runId !== 'queued') return;
			try {
				accepted = manager.startTask({ runId: 'retry-of-queued', moduleId: 'm' }, () => 'retry');
			} catch (error) {
				thrown.push(error);
			}
		});
		const shutdown = manager.shutdown({ graceMs: 20, abortGraceMs: 20 });
		running.done.resolve(undefined);
		await shutdown;
		expect(accepted).toBeUndefined();
		expect(thrown).toHaveLength(1);
		expect(thrown[0]).toBeInstanceOf(ShutdownError);
		expect(await manager.waitAll({ timeoutMs: 200 })).toEqual({ settled: true, pending: [] });
	});

	it('rejects a negative graceMs with a ValidationError', () => {
		const { manager } = createManager();
		expect(() => manager.shutdown({ graceMs: -1 })).toThrow(ValidationError);
	});

	it('gives adopted and promise runs the same abort window', async () => {
		const { manager, registry } = createManager();
		const now = Date.now();
		await registry.addRun({ runId: 'adopted', moduleId: 'm', status: 'queued', priority: 'normal', parameters: {}, createdAt: now, updatedAt: now });
		manager.startTask({ runId: 'adopted', moduleId: 'm', status: 'queued', priority: 'normal', parameters: {}, createdAt: now, updatedAt: now }, () => never());
		manager.startTask({ runId: 'promise', moduleId: 'm' }, never<string>());
		await sleep(5);
		const report = await manager.shutdown({ graceMs: 10, abortGraceMs: 20 });
		// Neither settles: a promise cannot be aborted, and the adopted run's task ignores its signal.
		expect(report.timedOut.sort()).toEqual(['adopted', 'promise']);
		expect(report.cancelled).toEqual([]);
		expect(report.unsettled).toEqual(['adopted']);
		expect((await registry.getRun('adopted'))!.error?.name).toBe('ShutdownTimeoutError');
		expect((await registry.getRun('promise'))!.error?.name).toBe('ShutdownTimeoutError');
		expect((await manager.listRuns()).runs).toHaveLength(2);
	});

	it('lets waitAll after shutdown return for a task that never settles only with a timeout', async () => {
		const { manager } = createManager();
		const runId = manager.startTask({ moduleId: 'm' }, () => never());
		await sleep(5);
		await manager.shutdown({ graceMs: 0, abortGraceMs: 10 });
		expect(await manager.waitAll({ timeoutMs: 30 })).toEqual({ settled: false, pending: [runId] });
	});
});
