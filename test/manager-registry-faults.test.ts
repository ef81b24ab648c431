/**
 * BackgroundTaskManager on a registry that fails: writes that throw for a while (before the
 * write, or after it landed), and a registry in which someone else cancels a run directly.
 * The manager must keep working, report on `error` and the logger, keep its own view right,
 * and leave the registry with the right states once writes succeed again.
 */
import { describe, expect, it } from 'vitest';
import { RegistryError, RunledgerError } from '../src/index.js';
import { sleep, until } from './support/deferred.js';
import { FlakyRegistry, RegistryDownError } from './support/flaky-registry.js';
import { createManager, shutdownManagersAfterEach } from './support/harness.js';
import { RecordingLogger } from './support/logger.js';
import { failOnUnhandledErrorsAfterEach } from './support/process-traps.js';
import { controlledTask } from './support/tasks.js';

failOnUnhandledErrorsAfterEach();
shutdownManagersAfterEach();

function flaky(): { registry: FlakyRegistry; logger: RecordingLogger } {
	return { registry: new FlakyRegistry(), logger: new RecordingLogger() };
}

// A manager with one slot, taken by a running blocker, and a second run whose QUEUED state is stored.
async function runStoredQueuedBehindABlocker() {
	const { registry } = flaky();
	const { manager, events } = createManager({ concurrency: 1 }, registry);
	const blocker = controlledTask();
	const task = controlledTask();
	const blockerId = manager.startTask({ moduleId: 'm' }, blocker.fn);
	const runId = manager.startTask({ moduleId: 'm' }, task.fn);
	await blocker.called;
	await manager.flush();
	expect((await registry.inner.getRun(runId))!.status).toBe('queued');
	return { registry, manager, events, blocker, task, blockerId, runId };
}

describe('a registry whose writes fail for a while', () => {
	it('keeps running a task while addRun fails, reports RegistryError and catches the registry up', async () => {
		const { registry, logger } = flaky();
		const { manager, events } = createManager({ logger }, registry);
		registry.failing = true;
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		await task.called;
		await until(() => events.errors.length > 0, 'a registry error');

		const error = events.errors[0]!;
		expect(error).toBeInstanceOf(RegistryError);
		expect((error as RegistryError).operation).toBe('addRun');
		expect((error as RegistryError).runId).toBe(runId);
		expect((error as RegistryError).cause).toBeInstanceOf(RegistryDownError);
		expect(error.message).toBe(`Registry addRun of run "${runId}" failed: registry is down (addRun)`);
		const logged = logger.at('error');
		expect(logged.length).toBeGreaterThanOrEqual(1);
		expect(logged[0]!.object).toMatchObject({ runId, err: error });

		// The manager's own view stays right while nothing could be written.
		expect(await registry.inner.getRun(runId)).toBeUndefined();
		expect((await manager.getRun(runId))!.status).toBe('running');
		expect(manager.getStats()).toMatchObject({ running: 1, pendingWrites: 1 });

		task.done.resolve('done while down');
		await until(async () => (await manager.getRun(runId))!.status === 'completed', 'the local completion');
		expect(manager.getStats()).toMatchObject({ running: 0, completed: 1, pendingWrites: 1 });
		expect(events.names(runId)).toEqual(['queued', 'started', 'completed']);

		registry.failing = false;
		expect(await manager.waitAll({ timeoutMs: 5000 })).toEqual({ settled: true, pending: [] });
		expect(await registry.inner.getRun(runId)).toMatchObject({ status: 'completed', result: 'done while down' });
		expect(registry.failures.addRun).toBeGreaterThanOrEqual(1);
		expect(registry.calls.addRun).toBe(registry.failures.addRun + 1);
		expect(manager.getStats().pendingWrites).toBe(0);
		expect((await manager.listRuns()).runs).toHaveLength(1);
	});

	it('catches up when updateRun fails after the run was added as RUNNING', async () => {
		const { registry, logger } = flaky();
		const { manager, events } = createManager({ logger, progressThrottleMs: 0 }, registry);
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		const ctx = await task.called;
		await manager.flush();
		expect((await registry.inner.getRun(runId))!.status).toBe('running');

		registry.failing = true;
		ctx.reportProgress(50, 'half');
		task.done.resolve(7);
		await until(() => events.errors.length > 0, 'a registry error');
		expect(events.errors[0]).toBeInstanceOf(RegistryError);
		expect((events.errors[0] as RegistryError).operation).toBe('updateRun');
		expect((await manager.getRun(runId))!.status).toBe('completed');
		expect((await registry.inner.getRun(runId))!.status).toBe('running');

		await sleep(150);
		registry.failing = false;
		expect(await manager.waitAll({ timeoutMs: 5000 })).toEqual({ settled: true, pending: [] });
		expect(await registry.inner.getRun(runId)).toMatchObject({ status: 'completed', result: 7, progress: { percent: 50, message: 'half' } });
		expect(logger.at('error').length).toBe(events.errors.length);
	});

	it('catches up a run that started and ended while its start could not be written', async () => {
		const { registry, manager, events, blocker, task, blockerId, runId } = await runStoredQueuedBehindABlocker();

		registry.failing = true;
		blocker.done.resolve('b');
		await task.called;
		task.done.resolve('t');
		await until(async () => (await manager.getRun(runId))!.status === 'completed', 'the local completion');
		await until(() => events.errors.length > 0, 'a registry error');

		registry.failing = false;
		expect(await manager.waitAll({ timeoutMs: 5000 })).toEqual({ settled: true, pending: [] });
		expect(await registry.inner.getRun(blockerId)).toMatchObject({ status: 'completed', result: 'b' });
		expect(await registry.inner.getRun(runId)).toMatchObject({ status: 'completed', result: 't' });
		expect(events.errors.every((error) => error instanceof RegistryError)).toBe(true);
	});

	it('writes a cancel made while the registry is down once it is back', async () => {
		const { registry } = flaky();
		const { manager, events } = createManager({}, registry);
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		await task.called;
		await manager.flush();
		registry.failing = true;
		expect(await manager.cancelTask(runId, 'while down')).toBe(true);
		task.done.resolve('late');
		await until(() => events.errors.length > 0, 'a registry error');
		registry.failing = false;
		await manager.waitAll({ timeoutMs: 5000 });
		expect(await registry.inner.getRun(runId)).toMatchObject({ status: 'cancelled', error: { name: 'CancelledError', message: `Run "${runId}" was cancelled: while down` } });
	});

	it('waitAll with a timeout names a run whose writes keep failing', async () => {
		const { registry } = flaky();
		const { manager } = createManager({}, registry);
		registry.failing = true;
		const runId = manager.startTask({ moduleId: 'm' }, async () => 'x');
		expect(await manager.waitAll({ timeoutMs: 60 })).toEqual({ settled: false, pending: [runId] });
		expect(manager.getStats()).toMatchObject({ completed: 1, pendingWrites: 1 });
		registry.failing = false;
		expect(await manager.waitAll({ timeoutMs: 5000 })).toEqual({ settled: true, pending: [] });
	});

	it('waitForRun resolves once the terminal state is finally written', async () => {
		const { registry } = flaky();
		const { manager } = createManager({}, registry);
		registry.failing = true;
		const runId = manager.startTask({ moduleId: 'm' }, async () => 'eventually');
		let settled = false;
		const waiting = manager.waitForRun(runId).then((run) => {
			settled = true;
			return run;
		});
		await sleep(60);
		expect(settled).toBe(false);
		registry.failing = false;
		expect(await waiting).toMatchObject({ status: 'completed', result: 'eventually' });
		expect(await registry.inner.getRun(runId)).toMatchObject({ status: 'completed', result: 'eventually' });
	});

	it('keeps working with no `error` listener', async () => {
		const registry = new FlakyRegistry();
		const { BackgroundTaskManager } = await import('../src/index.js');
		const manager = new BackgroundTaskManager(registry);
		registry.failing = true;
		const runId = manager.startTask({ moduleId: 'm' }, async () => 1);
		await sleep(30);
		registry.failing = false;
		await manager.waitAll({ timeoutMs: 5000 });
		expect((await registry.inner.getRun(runId))!.status).toBe('completed');
		await manager.shutdown({ graceMs: 0, abortGraceMs: 10 });
	});

	it('reports an error listener that throws through the logger and keeps working', async () => {
		const { registry, logger } = flaky();
		const { manager } = createManager({ logger }, registry);
		manager.on('error', () => {
			throw new Error('error listener broke');
		});
		registry.failing = true;
		const runId = manager.startTask({ moduleId: 'm' }, async () => 1);
		await until(() => logger.at('error').some((entry) => (entry.object.err as Error | undefined)?.message === 'error listener broke'), 'the logged listener error');
		registry.failing = false;
		await manager.waitAll({ timeoutMs: 5000 });
		expect((await registry.inner.getRun(runId))!.status).toBe('completed');
	});

	it('stops retrying at shutdown and names the unwritten runs unflushed', async () => {
		const { registry } = flaky();
		const { manager } = createManager({}, registry);
		registry.failing = true;
		const runId = manager.startTask({ moduleId: 'm' }, async () => 1);
		await sleep(20);
		const report = await manager.shutdown({ graceMs: 0, abortGraceMs: 50 });
		// The run had ended before the shutdown began: it is in none of the run lists, only unflushed.
		expect(report).toEqual({ finished: [], cancelled: [], timedOut: [], unsettled: [], unflushed: [runId] });
		const calls = registry.calls.addRun + registry.calls.updateRun;
		await sleep(300);
		expect(registry.calls.addRun + registry.calls.updateRun).toBe(calls);
		expect(manager.getStats().pendingWrites).toBe(0);
	});
});

describe('a registry whose writes land but report failure', () => {
	it('does not fail a run whose start was stored although updateRun threw', async () => {
		const { registry, manager, events, blocker, task, blockerId, runId } = await runStoredQueuedBehindABlocker();

		registry.mode = 'after';
		registry.failing = true;
		blocker.done.resolve('b');
		await task.called;
		await until(() => registry.failures.updateRun >= 2, 'two failed updates');
		registry.failing = false;

		task.done.resolve('t');
		await manager.waitAll({ timeoutMs: 5000 });
		expect(events.terminal(runId).map((recorded) => recorded.event)).toEqual(['completed']);
		expect(task.context!.signal.aborted).toBe(false);
		expect(await registry.inner.getRun(blockerId)).toMatchObject({ status: 'completed', result: 'b' });
		expect(await registry.inner.getRun(runId)).toMatchObject({ status: 'completed', result: 't' });
		expect(events.errors.every((error) => error instanceof RegistryError)).toBe(true);
	});

	it('does not report a conflict for an addRun that landed although it threw', async () => {
		const { registry } = flaky();
		const { manager, events } = createManager({}, registry);
		registry.mode = 'after';
		registry.failOps = new Set(['addRun']);
		registry.failing = true;
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		await task.called;
		await until(() => events.errors.length > 0, 'a registry error');
		registry.failing = false;
		task.done.resolve('ok');
		await manager.waitAll({ timeoutMs: 5000 });
		expect(await registry.inner.getRun(runId)).toMatchObject({ status: 'completed', result: 'ok' });
		expect(events.errors.map((error) => error.name)).toEqual(events.errors.map(() => 'RegistryError'));
		expect(events.terminal(runId).map((recorded) => recorded.event)).toEqual(['completed']);
	});
});

describe('a run cancelled directly in the registry by someone else', () => {
	async function cancelInRegistry(registry: FlakyRegistry, runId: string): Promise<void> {
		const updated = await registry.updateRun(
			runId,
			{ status: 'cancelled', completedAt: Date.now(), error: { name: 'CancelledError', message: 'cancelled by an operator' } },
			{ ifStatus: 'running' },
		);
		expect(updated?.status).toBe('cancelled');
	}

	it('adopts the stored CANCELLED state on its next write and aborts the task signal', async () => {
		const { registry, logger } = flaky();
		const { manager, events } = createManager({ logger, progressThrottleMs: 0 }, registry);
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		const ctx = await task.called;
		await manager.flush();
		await cancelInRegistry(registry, runId);

		ctx.reportProgress(30);
		await until(() => ctx.signal.aborted, 'the signal to abort');
		expect(ctx.signal.reason).toBeInstanceOf(RunledgerError);
		expect((ctx.signal.reason as Error).name).toBe('CancelledError');
		await until(() => !manager.isTaskActive(runId), 'the run to become inactive');
		expect(await manager.getRun(runId)).toMatchObject({ status: 'cancelled', error: { message: 'cancelled by an operator' } });
		expect(manager.getStats()).toMatchObject({ running: 0, cancelled: 1, draining: 1 });
		expect(events.terminal(runId).map((recorded) => recorded.event)).toEqual(['cancelled']);
		expect(await manager.cancelTask(runId)).toBe(false);

		task.done.resolve('late result');
		await manager.waitAll({ timeoutMs: 5000 });
		const stored = await registry.inner.getRun(runId);
		expect(stored).toMatchObject({ status: 'cancelled', error: { name: 'CancelledError', message: 'cancelled by an operator' } });
		expect(stored!.result).toBeUndefined();
		expect(events.terminal(runId).map((recorded) => recorded.event)).toEqual(['cancelled']);
		expect(manager.getStats()).toMatchObject({ completed: 0, cancelled: 1, draining: 0 });
		expect(events.errors).toEqual([]);
		expect(logger.at('info').some((entry) => entry.object.runId === runId)).toBe(true);
	});

	it('never lets a late completion overwrite the stored CANCELLED state', async () => {
		const { registry } = flaky();
		const { manager } = createManager({}, registry);
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		await task.called;
		await manager.flush();
		await cancelInRegistry(registry, runId);

		task.done.resolve('completed elsewhere too late');
		const run = await manager.waitForRun(runId, { timeoutMs: 2000 });
		expect(run.status).toBe('cancelled');
		await manager.waitAll({ timeoutMs: 5000 });
		const stored = await registry.inner.getRun(runId);
		expect(stored!.status).toBe('cancelled');
		expect(stored!.result).toBeUndefined();
		expect(await manager.getRun(runId)).toMatchObject({ status: 'cancelled' });
	});

	it('never lets a late failure overwrite the stored CANCELLED state', async () => {
		const { registry } = flaky();
		const { manager } = createManager({}, registry);
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		await task.called;
		await manager.flush();
		await cancelInRegistry(registry, runId);
		task.done.reject(new Error('failed after the cancel'));
		await manager.waitAll({ timeoutMs: 5000 });
		expect(await registry.inner.getRun(runId)).toMatchObject({ status: 'cancelled', error: { message: 'cancelled by an operator' } });
	});
});
