/**
 * Several BackgroundTaskManager instances in one process, sharing one MemoryRunRegistry and one
 * LocalCancellationBus: cancels that cross instances (with and without the bus), the start gate
 * of runs others can see QUEUED, replayed and malformed bus messages, owner leases and reaping,
 * validation of the distributed options, and what shutdown leaves behind.
 */
import { describe, expect, it } from 'vitest';
import {
	BackgroundTaskManager,
	type BackgroundTaskManagerOptions,
	type CancelCommand,
	type CancellationBus,
	CancelledError,
	LocalCancellationBus,
	MemoryRunRegistry,
	RegistryError,
	RunledgerError,
	type Run,
	type RunRegistry,
	type TaskContext,
	ValidationError,
} from '../src/index.js';
import { type Deferred, deferred, sleep, tick, until } from './support/deferred.js';
import { type FailureMode, FlakyRegistry } from './support/flaky-registry.js';
import { ForwardingRegistry } from './support/forwarding-registry.js';
import { type Harness, createManager, shutdownManagersAfterEach } from './support/harness.js';
import { RecordingLogger } from './support/logger.js';
import { failOnUnhandledErrorsAfterEach } from './support/process-traps.js';
import { controlledTask } from './support/tasks.js';

failOnUnhandledErrorsAfterEach();
shutdownManagersAfterEach();

// So large that a reconcile never runs during a test: whatever happened, the bus (or a write) did it.
const NO_RECONCILE = 60_000;

/** Several managers on one registry and one bus, each with its own instanceId. */
function cluster(
	ids: readonly string[],
	options: { readonly bus?: CancellationBus | null | undefined; readonly per?: Readonly<Record<string, BackgroundTaskManagerOptions>> } = {},
): { registry: MemoryRunRegistry; bus: LocalCancellationBus; nodes: Record<string, Harness<MemoryRunRegistry>> } {
	const registry = new MemoryRunRegistry();
	const bus = new LocalCancellationBus();
	const nodes: Record<string, Harness<MemoryRunRegistry>> = {};
	for (const instanceId of ids) {
		nodes[instanceId] = createManager(
			{
				instanceId,
				reconcileIntervalMs: NO_RECONCILE,
				...(options.bus === null ? {} : { bus: options.bus ?? bus }),
				...options.per?.[instanceId],
			},
			registry,
		);
	}

	return { registry, bus, nodes };
}

function node(nodes: Record<string, Harness<MemoryRunRegistry>>, id: string): Harness<MemoryRunRegistry> {
	const harness = nodes[id];
	if (harness === undefined) throw new Error(`no node ${id}`);
	return harness;
}

/**
 * A task that waits for the test to release it and ignores its signal: it records when and why
 * its signal aborted, and returns whatever the test releases it with (a late result, once aborted).
 */
interface SignalTask {
	readonly fn: (context: TaskContext) => Promise<string>;
	readonly called: Promise<TaskContext>;
	readonly aborted: Deferred<unknown>;
	readonly release: Deferred<string>;
	readonly calls: number;
}

function signalTask(onAbort?: (context: TaskContext) => void): SignalTask {
	const called = deferred<TaskContext>();
	const aborted = deferred<unknown>();
	const release = deferred<string>();
	let calls = 0;
	return {
		called: called.promise,
		aborted,
		release,
		get calls() {
			return calls;
		},
		fn: async (context: TaskContext) => {
			calls++;
			context.signal.addEventListener(
				'abort',
				() => {
					onAbort?.(context);
					aborted.resolve(context.signal.reason);
				},
				{ once: true },
			);
			called.resolve(context);
			return release.promise;
		},
	};
}

/** Waits (polling, generous deadline) until the task's signal aborted, and returns its reason. */
async function abortReason(task: SignalTask, what: string, timeoutMs = 2000): Promise<unknown> {
	await until(() => task.aborted.settled, what, timeoutMs);
	return task.aborted.promise;
}

function storedRun(runId: string, fields: { status?: 'queued' | 'running'; ownerId?: string; itemId?: string } = {}): Run {
	const now = Date.now();
	const status = fields.status ?? 'running';
	return {
		runId,
		moduleId: 'remote',
		status,
		priority: 'normal',
		parameters: {},
		createdAt: now,
		updatedAt: now,
		...(status === 'running' ? { startedAt: now } : {}),
		...(fields.ownerId === undefined ? {} : { ownerId: fields.ownerId }),
		...(fields.itemId === undefined ? {} : { itemId: fields.itemId }),
	};
}

async function statusOf(registry: RunRegistry, runId: string): Promise<string | undefined> {
	return (await registry.getRun(runId))?.status;
}

function catchError(fn: () => unknown): unknown {
	try {
		fn();
	} catch (error) {
		return error;
	}

	throw new Error('expected a throw');
}

function timeouts(): number {
	return process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
}

describe('a cancel across instances, through the bus', () => {
	it('records CANCELLED first, then aborts the owner via the bus long before any reconcile, and discards the late result', async () => {
		const { registry, nodes } = cluster(['a', 'b']);
		const a = node(nodes, 'a');
		const b = node(nodes, 'b');
		let statusAtAbort: Promise<string | undefined> | undefined;
		// MemoryRunRegistry reads synchronously when called: this is the registry at the moment A's signal aborts.
		const task = signalTask((context) => {
			statusAtAbort = statusOf(registry, context.runId);
		});
		const runId = a.manager.startTask({ moduleId: 'm' }, task.fn);
		await task.called;
		await a.manager.flush();
		expect(await registry.getRun(runId)).toMatchObject({ status: 'running', ownerId: 'a' });

		const startedAt = Date.now();
		expect(await b.manager.cancelTask(runId, 'stop')).toBe(true);
		expect(await registry.getRun(runId)).toMatchObject({
			status: 'cancelled',
			error: { name: 'CancelledError', message: `Run "${runId}" was cancelled: stop` },
		});

		const reason = await abortReason(task, 'the bus to abort the task');
		// Well under the 60 s reconcile interval: only the bus can have told A.
		expect(Date.now() - startedAt).toBeLessThan(NO_RECONCILE / 10);
		expect(await statusAtAbort).toBe('cancelled');
		expect(reason).toBeInstanceOf(CancelledError);
		expect((reason as CancelledError).reason).toBe('stop');
		expect((reason as CancelledError).runId).toBe(runId);
		expect(a.manager.isTaskActive(runId)).toBe(false);

		task.release.resolve('late result');
		await a.manager.waitAll();
		await b.manager.waitAll();
		const stored = await registry.getRun(runId);
		expect(stored).toMatchObject({ status: 'cancelled', error: { name: 'CancelledError', message: `Run "${runId}" was cancelled: stop` } });
		expect(stored!.result).toBeUndefined();

		expect(await b.manager.cancelTask(runId, 'again')).toBe(false);
		expect(await a.manager.cancelTask(runId, 'again')).toBe(false);
		expect((await registry.getRun(runId))!.error!.message).toBe(`Run "${runId}" was cancelled: stop`);

		expect(a.events.names(runId)).toEqual(['queued', 'started', 'cancelled']);
		expect(a.manager.getStats()).toMatchObject({ completed: 0, failed: 0, cancelled: 1, running: 0, draining: 0 });
		expect(b.events.names(runId)).toEqual(['cancelled']);
		expect(b.manager.getStats()).toMatchObject({ cancelled: 1 });
		expect(a.events.errors).toEqual([]);
		expect(b.events.errors).toEqual([]);
	});
});

describe('a cancel across instances, without a bus (the message is lost)', () => {
	it('aborts the owner through its reconcile and never lets the late completion overwrite CANCELLED', async () => {
		const { registry, nodes } = cluster(['a', 'b'], { bus: null, per: { a: { reconcileIntervalMs: 100 } } });
		const a = node(nodes, 'a');
		const b = node(nodes, 'b');
		const task = signalTask();
		const runId = a.manager.startTask({ moduleId: 'm' }, task.fn);
		await task.called;
		await a.manager.flush();

		expect(await b.manager.cancelTask(runId, 'stop')).toBe(true);
		expect(await statusOf(registry, runId)).toBe('cancelled');

		const reason = await abortReason(task, 'the reconcile to abort the task');
		expect(reason).toBeInstanceOf(CancelledError);
		expect((reason as CancelledError).runId).toBe(runId);
		expect(a.manager.isTaskActive(runId)).toBe(false);
		expect(a.manager.getStats()).toMatchObject({ cancelled: 1, completed: 0, running: 0 });

		task.release.resolve('late result');
		await a.manager.waitAll();
		await sleep(250);
		const stored = await registry.getRun(runId);
		expect(stored).toMatchObject({ status: 'cancelled', error: { name: 'CancelledError', message: `Run "${runId}" was cancelled: stop` } });
		expect(stored!.result).toBeUndefined();
		expect(a.events.terminal(runId).map((recorded) => recorded.event)).toEqual(['cancelled']);
		expect(a.manager.getStats()).toMatchObject({ cancelled: 1, completed: 0, failed: 0, draining: 0 });
	});
});

describe('the start gate of a run stored QUEUED', () => {
	it.each([
		['without a bus', null],
		['with the bus', undefined],
	] as const)('never calls the function of a queued run cancelled from another instance (%s)', async (_label, bus) => {
		const { registry, nodes } = cluster(['a', 'b'], { bus, per: { a: { concurrency: 1, reconcileIntervalMs: 0 } } });
		const a = node(nodes, 'a');
		const b = node(nodes, 'b');
		const blocker = controlledTask<string>();
		const queued = controlledTask<string>();
		const blockerId = a.manager.startTask({ moduleId: 'm' }, blocker.fn);
		const queuedId = a.manager.startTask({ moduleId: 'm' }, queued.fn);
		await blocker.called;
		await a.manager.flush();
		expect(await statusOf(registry, queuedId)).toBe('queued');

		expect(await b.manager.cancelTask(queuedId, 'not needed')).toBe(true);
		expect(await statusOf(registry, queuedId)).toBe('cancelled');

		// A's slot frees: without the bus A still believes the run is queued and tries to start it.
		blocker.done.resolve('first');
		await until(() => a.manager.getActiveTaskCount() === 0, 'A to drop both runs', 2000);
		await a.manager.waitAll({ timeoutMs: 2000 });
		await sleep(50);

		expect(queued.calls).toBe(0);
		expect(await registry.getRun(blockerId)).toMatchObject({ status: 'completed', result: 'first' });
		const stored = await registry.getRun(queuedId);
		expect(stored).toMatchObject({ status: 'cancelled', error: { name: 'CancelledError', message: `Run "${queuedId}" was cancelled: not needed` } });
		expect(stored!.startedAt).toBeUndefined();
		expect(a.events.terminal(queuedId).map((recorded) => recorded.event)).toEqual(['cancelled']);
		expect(a.manager.getStats()).toMatchObject({ queued: 0, running: 0, draining: 0, completed: 1, cancelled: 1, failed: 0 });
		expect(a.manager.getActiveTaskCount()).toBe(0);

		// The freed slot serves the next run.
		const next = controlledTask<string>();
		const nextId = a.manager.startTask({ moduleId: 'm' }, next.fn);
		await next.called;
		next.done.resolve('next');
		await a.manager.waitAll();
		expect(await registry.getRun(nextId)).toMatchObject({ status: 'completed', result: 'next' });
	});
});

describe('cancelItemTasks across instances', () => {
	it('cancels the runs of one item on every instance, returns the total and leaves other items alone', async () => {
		const { registry, nodes } = cluster(['a', 'b', 'c'], { per: { b: { concurrency: 3 } } });
		const a = node(nodes, 'a');
		const b = node(nodes, 'b');
		const c = node(nodes, 'c');
		const tasks = new Map<string, SignalTask>();
		const start = (harness: Harness<MemoryRunRegistry>, itemId: string): string => {
			const task = signalTask();
			const runId = harness.manager.startTask({ moduleId: 'm', itemId }, task.fn);
			tasks.set(runId, task);
			return runId;
		};

		const xOnA = [start(a, 'X'), start(a, 'X')];
		const yOnA = start(a, 'Y');
		const xOnB = [start(b, 'X'), start(b, 'X')];
		const yOnB = start(b, 'Y');
		// B's three slots are taken: this one waits QUEUED.
		const xQueuedOnB = start(b, 'X');
		await a.manager.flush();
		await b.manager.flush();
		expect(await statusOf(registry, xQueuedOnB)).toBe('queued');
		expect(b.manager.getStats()).toMatchObject({ running: 3, queued: 1 });

		expect(await c.manager.cancelItemTasks('X', 'item deleted')).toBe(5);

		const xRuns = [...xOnA, ...xOnB, xQueuedOnB];
		for (const runId of xRuns) {
			expect(await registry.getRun(runId)).toMatchObject({
				status: 'cancelled',
				error: { name: 'CancelledError', message: `Run "${runId}" was cancelled: item deleted` },
			});
		}

		for (const runId of [...xOnA, ...xOnB]) {
			const reason = await abortReason(tasks.get(runId)!, `the bus to abort ${runId}`);
			expect((reason as CancelledError).reason).toBe('item deleted');
		}

		await until(() => a.manager.getActiveTaskCount() === 1 && b.manager.getActiveTaskCount() === 1, 'A and B to drop the X runs', 2000);
		expect(a.manager.getActiveTaskIds()).toEqual([yOnA]);
		expect(b.manager.getActiveTaskIds()).toEqual([yOnB]);
		for (const runId of [yOnA, yOnB]) {
			expect(await statusOf(registry, runId)).toBe('running');
			expect(tasks.get(runId)!.aborted.settled).toBe(false);
		}

		expect(c.manager.getStats()).toMatchObject({ cancelled: 5 });
		expect(a.manager.getStats()).toMatchObject({ cancelled: 2, running: 1 });
		expect(b.manager.getStats()).toMatchObject({ cancelled: 3, running: 1, queued: 0 });
		expect(await c.manager.cancelItemTasks('X')).toBe(0);

		for (const task of tasks.values()) task.release.resolve('late');
		await a.manager.waitAll();
		await b.manager.waitAll();
		expect(tasks.get(xQueuedOnB)!.calls).toBe(0);
		for (const runId of xRuns) expect(await statusOf(registry, runId)).toBe('cancelled');
		for (const runId of [yOnA, yOnB]) expect(await registry.getRun(runId)).toMatchObject({ status: 'completed', result: 'late' });
	});
});

describe('duplicate, replayed and malformed bus messages', () => {
	it('changes nothing on replays of a cancel already applied, or on a cancel of an unknown run', async () => {
		const { registry, bus, nodes } = cluster(['a', 'b']);
		const a = node(nodes, 'a');
		const b = node(nodes, 'b');
		const task = signalTask();
		const runId = a.manager.startTask({ moduleId: 'm' }, task.fn);
		await task.called;
		await a.manager.flush();
		expect(await b.manager.cancelTask(runId, 'stop')).toBe(true);
		await abortReason(task, 'the bus to abort the task');

		const command: CancelCommand = { type: 'cancel', runId, reason: 'replayed', origin: 'b' };
		// While A's task is still unwinding (its run is terminal but not forgotten)...
		for (let i = 0; i < 5; i++) await bus.publish(command);
		await tick();
		expect(a.manager.getStats()).toMatchObject({ cancelled: 1, draining: 1 });

		// ...and once A has forgotten the run.
		task.release.resolve('late');
		await a.manager.waitAll();
		for (let i = 0; i < 5; i++) await bus.publish(command);
		await bus.publish({ type: 'cancel', runId: 'no-such-run', reason: 'whatever' });
		await tick();

		expect(a.manager.getStats()).toMatchObject({ cancelled: 1, completed: 0, failed: 0, draining: 0 });
		expect(a.events.count('cancelled')).toBe(1);
		expect(b.manager.getStats()).toMatchObject({ cancelled: 1 });
		expect(b.events.count('cancelled')).toBe(1);
		expect(a.events.errors).toEqual([]);
		expect(b.events.errors).toEqual([]);
		expect(await registry.getRun(runId)).toMatchObject({ status: 'cancelled', error: { message: `Run "${runId}" was cancelled: stop` } });
		expect(await registry.getRun('no-such-run')).toBeUndefined();
	});

	it('drops malformed messages, reports each on `error` and still obeys a valid cancel right after', async () => {
		const { registry, bus, nodes } = cluster(['a', 'b']);
		const a = node(nodes, 'a');
		const victim = signalTask();
		const runId = a.manager.startTask({ moduleId: 'm' }, victim.fn);
		await victim.called;
		await a.manager.flush();

		const malformed: unknown[] = [
			{ type: 'cancel' },
			null,
			'cancel',
			{ type: 'cancel', runId: 42 },
			{ type: 'cancel', runId: '' },
			{ type: 'stop', runId },
			{ type: 'cancel', runId, reason: 7 },
		];
		for (const message of malformed) await bus.publish(message as CancelCommand);
		await tick();

		expect(a.events.errors).toHaveLength(malformed.length);
		for (const error of a.events.errors) {
			expect(error).toBeInstanceOf(RunledgerError);
			expect(error.code).toBe('ERR_BUS');
			expect(error.message).toBe('Dropped a malformed cancel command');
		}

		expect(victim.aborted.settled).toBe(false);
		expect(a.manager.isTaskActive(runId)).toBe(true);
		expect(a.manager.getStats()).toMatchObject({ running: 1, cancelled: 0 });
		expect(await statusOf(registry, runId)).toBe('running');

		await bus.publish({ type: 'cancel', runId, reason: 'now' });
		const reason = await abortReason(victim, 'the valid cancel to abort the task');
		expect((reason as CancelledError).reason).toBe('now');
		await a.manager.flush();
		expect(await registry.getRun(runId)).toMatchObject({ status: 'cancelled', error: { message: `Run "${runId}" was cancelled: now` } });
		expect(a.events.errors).toHaveLength(malformed.length);
		victim.release.resolve('late');
	});
});

describe('owner leases', () => {
	const leaseA: BackgroundTaskManagerOptions = { ownerLease: { ttlMs: 300 } };
	const leaseB: BackgroundTaskManagerOptions = { ownerLease: { ttlMs: 300, reapIntervalMs: 100 } };

	it('reaps the active runs of a crashed owner, and never runs without an owner or of a live one', async () => {
		const { registry } = cluster(['a', 'b'], { per: { a: leaseA, b: leaseB } });
		const ghosts = ['ghost-1', 'ghost-2', 'ghost-3'];
		for (const runId of ghosts) await registry.addRun(storedRun(runId, { ownerId: 'ghost' }));
		await registry.addRun(storedRun('ghost-queued', { status: 'queued', ownerId: 'ghost' }));
		await registry.addRun(storedRun('ownerless'));
		await registry.addRun(storedRun('owned-by-a', { ownerId: 'a' }));
		const addedAt = Date.now();

		for (const runId of [...ghosts, 'ghost-queued']) {
			await until(async () => (await statusOf(registry, runId)) === 'failed', `${runId} to be reaped`, 3000);
			expect(await registry.getRun(runId)).toMatchObject({
				status: 'failed',
				ownerId: 'ghost',
				error: { name: 'OwnerLostError', message: `Owner "ghost" of run "${runId}" stopped renewing its lease` },
			});
		}

		// Within about ttl + reap interval (the ghost never had a lease: the first reap takes it).
		expect(Date.now() - addedAt).toBeLessThan(3000);
		await sleep(400);
		expect(await statusOf(registry, 'ownerless')).toBe('running');
		expect(await statusOf(registry, 'owned-by-a')).toBe('running');
	});

	it('never reaps the runs of a live owner whose tasks outlast the lease ttl', async () => {
		const { registry, nodes } = cluster(['a', 'b'], { per: { a: leaseA, b: leaseB } });
		const a = node(nodes, 'a');
		const runIds: string[] = [];
		for (let i = 0; i < 20; i++) {
			runIds.push(
				a.manager.startTask({ moduleId: 'm', parameters: { i } }, async (context) => {
					await sleep(1000);
					return `done ${(context.parameters as { i: number }).i}`;
				}),
			);
		}

		await a.manager.flush();
		// A ghost run added meanwhile proves that B's reaper is at work during those 1000 ms.
		await registry.addRun(storedRun('ghost-probe', { ownerId: 'ghost' }));
		await until(async () => (await statusOf(registry, 'ghost-probe')) === 'failed', 'the ghost probe to be reaped', 2000);

		await a.manager.waitAll({ timeoutMs: 5000 });
		for (const [i, runId] of runIds.entries()) {
			expect(await registry.getRun(runId)).toMatchObject({ status: 'completed', ownerId: 'a', result: `done ${i}` });
		}

		const failed = await registry.listRuns({ status: 'failed' });
		expect(failed.runs.map((run) => run.runId)).toEqual(['ghost-probe']);
		expect(a.manager.getStats()).toMatchObject({ completed: 20, failed: 0, cancelled: 0 });
		expect(a.events.count('failed')).toBe(0);
	});

	it('stops a paused owner whose lease lapsed on its next write, and keeps the reaped FAILED state', async () => {
		const { registry, nodes } = cluster(['a', 'b'], {
			per: {
				a: { ownerLease: { ttlMs: 300, reapIntervalMs: NO_RECONCILE } },
				b: { ownerLease: { ttlMs: 300, reapIntervalMs: NO_RECONCILE } },
			},
		});
		const a = node(nodes, 'a');
		const b = node(nodes, 'b');
		const task = signalTask();
		const runId = a.manager.startTask({ moduleId: 'm' }, task.fn);
		const context = await task.called;
		await a.manager.flush();
		expect(await registry.getRun(runId)).toMatchObject({ status: 'running', ownerId: 'a' });

		// A pauses long enough for its lease to lapse; B reaps before A's next heartbeat.
		await registry.releaseOwner('a');
		expect(await b.manager.reapOrphans()).toEqual([runId]);
		expect(await registry.getRun(runId)).toMatchObject({ status: 'failed', error: { name: 'OwnerLostError' } });
		expect(task.aborted.settled).toBe(false);

		// A wakes up and writes progress: the compare-and-set misses and A learns that the run ended.
		context.reportProgress(50, 'halfway');
		const reason = await abortReason(task, 'the progress write to abort the task');
		expect(reason).toBeInstanceOf(RunledgerError);
		expect((reason as RunledgerError).code).toBe('ERR_ENDED_ELSEWHERE');
		expect(a.manager.isTaskActive(runId)).toBe(false);

		task.release.resolve('late result');
		await a.manager.waitAll();
		const stored = await registry.getRun(runId);
		expect(stored).toMatchObject({
			status: 'failed',
			error: { name: 'OwnerLostError', message: `Owner "a" of run "${runId}" stopped renewing its lease` },
		});
		expect(stored!.result).toBeUndefined();
		expect(a.events.terminal(runId).map((recorded) => recorded.event)).toEqual(['failed']);
		expect(a.events.terminal(runId)[0]!.run.error!.name).toBe('OwnerLostError');
		expect(a.manager.getStats()).toMatchObject({ completed: 0, failed: 1, cancelled: 0, running: 0, draining: 0 });
	});

	it('stops a paused owner whose lease lapsed through its reconcile, when it writes nothing itself', async () => {
		const { registry, nodes } = cluster(['a', 'b'], {
			per: {
				a: { reconcileIntervalMs: 100, ownerLease: { ttlMs: 300, reapIntervalMs: NO_RECONCILE } },
				b: { ownerLease: { ttlMs: 300, reapIntervalMs: NO_RECONCILE } },
			},
		});
		const a = node(nodes, 'a');
		const b = node(nodes, 'b');
		const task = signalTask();
		const runId = a.manager.startTask({ moduleId: 'm' }, task.fn);
		await task.called;
		await a.manager.flush();

		await registry.releaseOwner('a');
		expect(await b.manager.reapOrphans()).toEqual([runId]);

		expect(((await abortReason(task, 'the reconcile to abort the reaped task')) as RunledgerError).code).toBe('ERR_ENDED_ELSEWHERE');
		task.release.resolve('late result');
		await a.manager.waitAll();
		await sleep(250);
		const stored = await registry.getRun(runId);
		expect(stored).toMatchObject({ status: 'failed', error: { name: 'OwnerLostError' } });
		expect(stored!.result).toBeUndefined();
		expect(a.events.terminal(runId).map((recorded) => recorded.event)).toEqual(['failed']);
		expect(a.manager.getStats()).toMatchObject({ completed: 0, failed: 1 });
	});

	// A's own lease is in doubt here (its heartbeats fail): a terminal event of its own waits for the
	// registry's answer to its write. A state read from the registry is that answer already.
	for (const { finder, reaper } of [
		{ finder: 'its reconcile', reaper: 'B' },
		{ finder: 'its own reaper', reaper: 'A' },
	] as const) {
		it(`emits the terminal event of a run ${finder} finds ended elsewhere while its own lease is in doubt, not only at shutdown`, async () => {
			class StallingHeartbeats extends ForwardingRegistry {
				stalled = false;
				override heartbeat(ownerId: string, ttlMs: number): Promise<void> {
					return this.stalled ? Promise.reject(new Error('heartbeat lost')) : super.heartbeat(ownerId, ttlMs);
				}
			}
			const registry = new MemoryRunRegistry();
			const viewOfA = new StallingHeartbeats(registry);
			const a = createManager({ instanceId: 'a', reconcileIntervalMs: reaper === 'B' ? 50 : NO_RECONCILE, ownerLease: { ttlMs: 200, reapIntervalMs: NO_RECONCILE } }, viewOfA);
			const b = createManager({ instanceId: 'b', reconcileIntervalMs: NO_RECONCILE, ownerLease: { ttlMs: 200, reapIntervalMs: NO_RECONCILE } }, registry);
			const task = signalTask();
			const runId = a.manager.startTask({ moduleId: 'm' }, task.fn);
			await task.called;
			await a.manager.flush();

			// A's heartbeats stop landing: its lease lapses in the registry, and A knows it may have.
			viewOfA.stalled = true;
			const reaping = reaper === 'B' ? b.manager : a.manager;
			await until(async () => (await reaping.reapOrphans()).includes(runId), `${reaper} to reap the run of A`, 2000);

			expect(((await abortReason(task, 'A to abort the reaped task')) as RunledgerError).code).toBe('ERR_ENDED_ELSEWHERE');
			await until(() => a.events.terminal(runId).length > 0, "A's terminal event for the reaped run", 2000);
			expect(a.events.terminal(runId).map((recorded) => recorded.event)).toEqual(['failed']);
			expect(a.events.terminal(runId)[0]!.run.error!.name).toBe('OwnerLostError');

			task.release.resolve('late result');
			await a.manager.waitAll();
			expect(a.events.terminal(runId).map((recorded) => recorded.event)).toEqual(['failed']);
			expect(await registry.getRun(runId)).toMatchObject({ status: 'failed', error: { name: 'OwnerLostError' } });
			expect(a.manager.getStats()).toMatchObject({ completed: 0, failed: 1 });
		});
	}

	it('releases the lease at shutdown, so that a run left behind is reaped at once', async () => {
		// A long ttl: only the release at shutdown can make the lease lapse within this test.
		const long = { ownerLease: { ttlMs: 60_000, reapIntervalMs: NO_RECONCILE } };
		const { registry, nodes } = cluster(['a', 'b'], { per: { a: long, b: long } });
		const a = node(nodes, 'a');
		const b = node(nodes, 'b');
		await registry.addRun(storedRun('left-behind', { ownerId: 'a' }));
		await tick();
		expect(await b.manager.reapOrphans()).toEqual([]);
		expect(await statusOf(registry, 'left-behind')).toBe('running');

		await a.manager.shutdown({ graceMs: 0, abortGraceMs: 20 });
		expect(await b.manager.reapOrphans()).toEqual(['left-behind']);
		expect(await registry.getRun('left-behind')).toMatchObject({ status: 'failed', error: { name: 'OwnerLostError' } });
	});
});

describe('validation of the distributed options', () => {
	// A registry with only the six base methods: no leases, no getRuns.
	function baseRegistry(): RunRegistry {
		const inner = new MemoryRunRegistry();
		return {
			addRun: (run) => inner.addRun(run),
			getRun: (runId) => inner.getRun(runId),
			updateRun: (runId, patch, options) => inner.updateRun(runId, patch, options),
			listRuns: (query) => inner.listRuns(query),
			deleteRun: (runId) => inner.deleteRun(runId),
			cleanupOldRuns: (maxAgeMs) => inner.cleanupOldRuns(maxAgeMs),
		};
	}

	it('refuses ownerLease without instanceId', () => {
		const error = catchError(() => new BackgroundTaskManager(new MemoryRunRegistry(), { ownerLease: { ttlMs: 300 } }));
		expect(error).toBeInstanceOf(ValidationError);
		expect((error as ValidationError).field).toBe('instanceId');
	});

	it('refuses ownerLease on a registry without leases', () => {
		const error = catchError(() => new BackgroundTaskManager(baseRegistry(), { instanceId: 'a', ownerLease: { ttlMs: 300 }, reconcileIntervalMs: 0 }));
		expect(error).toBeInstanceOf(ValidationError);
		expect((error as ValidationError).field).toBe('registry.heartbeat');
		expect((error as ValidationError).message).toContain('registry.heartbeat');
	});

	it.each([300, 301, 10_000])('refuses heartbeatIntervalMs %i with ttlMs 300', (heartbeatIntervalMs) => {
		const error = catchError(() => new BackgroundTaskManager(new MemoryRunRegistry(), { instanceId: 'a', ownerLease: { ttlMs: 300, heartbeatIntervalMs } }));
		expect(error).toBeInstanceOf(ValidationError);
		expect((error as ValidationError).field).toBe('ownerLease.heartbeatIntervalMs');
	});

	it('refuses a bus without publish', () => {
		const bus = { subscribe: async () => async () => {} } as unknown as CancellationBus;
		const error = catchError(() => new BackgroundTaskManager(new MemoryRunRegistry(), { bus }));
		expect(error).toBeInstanceOf(ValidationError);
		expect((error as ValidationError).field).toBe('bus');
	});

	it('leaves no bus subscription behind when the constructor refuses its registry', async () => {
		const bus = new LocalCancellationBus();
		const logger = new RecordingLogger();
		const error = catchError(
			() => new BackgroundTaskManager(baseRegistry(), { instanceId: 'a', ownerLease: { ttlMs: 300 }, bus, logger, reconcileIntervalMs: 0 }),
		);
		expect(error).toBeInstanceOf(ValidationError);
		await tick();
		// A half-built manager still subscribed would log this malformed message as a bus error.
		await bus.publish({ type: 'cancel' } as unknown as CancelCommand);
		await tick();
		expect(logger.entries).toEqual([]);
	});
});

describe('the start gate while the registry is in trouble', () => {
	it.each(['before', 'after'] as const)(
		'starts a run stored QUEUED whose queued→running write fails (%s the write), and writes its final state once the registry recovers',
		async (mode: FailureMode) => {
			const registry = new FlakyRegistry();
			registry.mode = mode;
			const { manager, events } = createManager({ instanceId: 'a', concurrency: 1, reconcileIntervalMs: 0 }, registry);
			const blocker = controlledTask<string>();
			const gated = controlledTask<string>();
			const blockerId = manager.startTask({ moduleId: 'm' }, blocker.fn);
			const gatedId = manager.startTask({ moduleId: 'm' }, gated.fn);
			await blocker.called;
			await manager.flush();
			expect(await statusOf(registry.inner, gatedId)).toBe('queued');

			registry.failing = true;
			blocker.done.resolve('first');
			// Availability over strictness: the gate opens although queued → running could not be confirmed.
			await until(() => gated.calls === 1, 'the gated function to be called', 2000);
			expect(gated.calls).toBe(1);
			expect(registry.failures.updateRun).toBeGreaterThanOrEqual(1);
			expect(events.errors.some((error) => error instanceof RegistryError && error.runId === gatedId)).toBe(true);
			if (mode === 'before') expect(await statusOf(registry.inner, gatedId)).toBe('queued');

			gated.done.resolve('second');
			await sleep(50);
			registry.failing = false;
			const report = await manager.waitAll({ timeoutMs: 10_000 });
			expect(report).toEqual({ settled: true, pending: [] });
			expect(await registry.inner.getRun(blockerId)).toMatchObject({ status: 'completed', result: 'first' });
			expect(await registry.inner.getRun(gatedId)).toMatchObject({ status: 'completed', result: 'second', ownerId: 'a' });
			expect(events.names(gatedId)).toEqual(['queued', 'started', 'completed']);
			expect(manager.getStats()).toMatchObject({ completed: 2, failed: 0, cancelled: 0, pendingWrites: 0 });
		},
	);
});

describe('shutdown of distributed managers', () => {
	it('unsubscribes from the bus and leaves no timer that keeps the process alive', async () => {
		const before = timeouts();
		const registry = new MemoryRunRegistry();
		const bus = new LocalCancellationBus();
		const options = (instanceId: string): BackgroundTaskManagerOptions => ({
			instanceId,
			bus,
			reconcileIntervalMs: 100,
			ownerLease: { ttlMs: 300, reapIntervalMs: 100 },
			retention: { maxAgeMs: 60_000, sweepIntervalMs: 100 },
			defaultTimeoutMs: 30_000,
		});
		const a = createManager(options('a'), registry);
		const b = createManager(options('b'), registry);
		// A registry that fails: its writes wait on retry timers, which are not unref'd.
		const flaky = new FlakyRegistry();
		flaky.failing = true;
		const c = createManager({ instanceId: 'c', bus, reconcileIntervalMs: 100 }, flaky);

		const tasks = [signalTask(), signalTask(), signalTask()];
		const [onA, onB, onC] = tasks as [SignalTask, SignalTask, SignalTask];
		a.manager.startTask({ moduleId: 'm' }, onA.fn);
		b.manager.startTask({ moduleId: 'm' }, onB.fn);
		c.manager.startTask({ moduleId: 'm' }, onC.fn);
		await Promise.all(tasks.map((task) => task.called));
		await until(() => flaky.failures.addRun > 0, 'a failed write on C');
		// The run timeouts (and C's retry timer) are live timers: the count can tell.
		expect(timeouts()).toBeGreaterThan(before);

		// Still subscribed: a malformed message reaches A.
		await bus.publish({ type: 'cancel' } as unknown as CancelCommand);
		await tick();
		expect(a.events.errors).toHaveLength(1);

		await Promise.all([a, b, c].map(({ manager }) => manager.shutdown({ graceMs: 0, abortGraceMs: 50 })));
		for (const task of tasks) task.release.resolve('late');

		const eventsAfter = a.events.events.length;
		await bus.publish({ type: 'cancel', runId: 'a-run-of-the-past', reason: 'late' });
		await bus.publish({ type: 'cancel' } as unknown as CancelCommand);
		await tick();
		expect(a.events.errors).toHaveLength(1);
		expect(a.events.events).toHaveLength(eventsAfter);
		expect(b.events.errors).toHaveLength(1);
		expect(c.events.errors.filter((error) => error.code === 'ERR_BUS')).toHaveLength(1);

		// At once, not after a wait: a retry or run timer that shutdown forgot would still be pending now.
		expect(timeouts()).toBeLessThanOrEqual(before);
	});
});

describe('finding runs by id when managers share one MemoryRunRegistry', () => {
	it('each manager finds its own runs and only those', async () => {
		// No bus: what is checked is who finds which run, not how a cancel travels.
		const { nodes } = cluster(['a', 'b'], { bus: null });
		const [a, b] = [node(nodes, 'a'), node(nodes, 'b')];
		const taskA = controlledTask();
		const taskB = controlledTask();
		const runA = a.manager.startTask({ moduleId: 'm' }, taskA.fn);
		const runB = b.manager.startTask({ moduleId: 'm' }, taskB.fn);
		await Promise.all([taskA.called, taskB.called]);

		expect([a.manager.isTaskActive(runA), a.manager.isTaskActive(runB)]).toEqual([true, false]);
		expect([b.manager.isTaskActive(runA), b.manager.isTaskActive(runB)]).toEqual([false, true]);
		expect(a.manager.getActiveTaskIds()).toEqual([runA]);
		expect((await a.manager.getRun(runB))?.ownerId).toBe('b');
		taskA.done.resolve(1);
		taskB.done.resolve(2);
		await Promise.all([a.manager.waitAll(), b.manager.waitAll()]);
		expect([a.manager.isTaskActive(runA), b.manager.isTaskActive(runB)]).toEqual([false, false]);
	});

	it('still finds and cancels a running run whose record was deleted from the registry', async () => {
		const { manager, registry, events } = createManager();
		const task = controlledTask();
		const runId = manager.startTask({ moduleId: 'm' }, task.fn);
		await task.called;
		expect(await registry.deleteRun(runId)).toBe(true);

		expect(manager.isTaskActive(runId)).toBe(true);
		expect((await manager.getRun(runId))?.status).toBe('running');
		expect(await manager.cancelTask(runId, 'gone')).toBe(true);
		expect(task.context?.signal.aborted).toBe(true);
		task.done.resolve(0);
		await manager.waitAll();
		expect(manager.isTaskActive(runId)).toBe(false);
		expect(events.names(runId)).toEqual(['queued', 'started', 'cancelled']);
	});

	it('keeps apart a deleted run still held by one manager and a new run of the same id started by another: the first one\'s cancel never lands on the second\'s record', async () => {
		// No bus: what is checked is who finds which run, not how a cancel travels.
		const { registry, nodes } = cluster(['a', 'b'], { bus: null });
		const [a, b] = [node(nodes, 'a'), node(nodes, 'b')];
		const taskA = controlledTask();
		const taskB = controlledTask();
		a.manager.startTask({ moduleId: 'm', runId: 'shared' }, taskA.fn);
		await taskA.called;
		await registry.deleteRun('shared');
		b.manager.startTask({ moduleId: 'm', runId: 'shared' }, taskB.fn);
		await taskB.called;

		expect([a.manager.isTaskActive('shared'), b.manager.isTaskActive('shared')]).toEqual([true, true]);
		expect(await a.manager.cancelTask('shared')).toBe(true);
		expect([taskA.context?.signal.aborted, taskB.context?.signal.aborted]).toEqual([true, false]);
		expect([a.manager.isTaskActive('shared'), b.manager.isTaskActive('shared')]).toEqual([false, true]);
		taskA.done.resolve(0);
		taskB.done.resolve(2);
		await Promise.all([a.manager.waitAll(), b.manager.waitAll()]);
		expect((await registry.getRun('shared'))?.status).toBe('completed');
		expect((await registry.getRun('shared'))?.ownerId).toBe('b');
	});
});
