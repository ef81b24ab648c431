/**
 * Property-based tests of BackgroundTaskManager: random sequences of start / cancel / resolve /
 * reject / progress / timeout / pause, with tasks controlled by deferred promises, checked
 * against invariants that must hold whatever the interleaving.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
	BackgroundTaskManager,
	MemoryRunRegistry,
	RUN_PRIORITIES,
	isLegalTransition,
	type RunPriority,
	type RunStatus,
} from '../src/index.js';
import { sleep } from './support/deferred.js';
import { EventRecorder } from './support/event-recorder.js';
import { ConcurrencyMeter, type ControlledTask, controlledTask } from './support/tasks.js';

type Command =
	| { readonly kind: 'start'; readonly moduleId: 'a' | 'b'; readonly priority: RunPriority; readonly timeoutMs: number | undefined; readonly honoursSignal: boolean }
	| { readonly kind: 'cancel' | 'resolve' | 'reject'; readonly pick: number }
	| { readonly kind: 'progress'; readonly pick: number; readonly percent: number }
	| { readonly kind: 'pause'; readonly ms: number };

const commandArbitrary: fc.Arbitrary<Command> = fc.oneof(
	{
		weight: 3,
		arbitrary: fc.record({
			kind: fc.constant('start' as const),
			moduleId: fc.constantFrom('a' as const, 'b' as const),
			priority: fc.constantFrom(...RUN_PRIORITIES),
			timeoutMs: fc.option(fc.constantFrom(3, 15), { nil: undefined }),
			honoursSignal: fc.boolean(),
		}),
	},
	{ weight: 2, arbitrary: fc.record({ kind: fc.constantFrom('cancel' as const, 'resolve' as const, 'reject' as const), pick: fc.nat(40) }) },
	{ weight: 1, arbitrary: fc.record({ kind: fc.constant('progress' as const), pick: fc.nat(40), percent: fc.double({ min: -50, max: 150, noNaN: true }) }) },
	{ weight: 1, arbitrary: fc.record({ kind: fc.constant('pause' as const), ms: fc.constantFrom(0, 1, 5) }) },
);

const limitsArbitrary = fc.record({
	concurrency: fc.constantFrom(1, 2, 3, Number.POSITIVE_INFINITY),
	moduleALimit: fc.option(fc.constantFrom(1, 2), { nil: undefined }),
});

interface Started {
	readonly runId: string;
	readonly moduleId: string;
	readonly task: ControlledTask;
	readonly cancelResults: Array<Promise<boolean>>;
}

const TERMINAL = new Set<string>(['completed', 'failed', 'cancelled']);

async function runScenario(limits: { concurrency: number; moduleALimit: number | undefined }, commands: readonly Command[]): Promise<void> {
	const registry = new MemoryRunRegistry();
	const manager = new BackgroundTaskManager(registry, {
		concurrency: limits.concurrency,
		...(limits.moduleALimit === undefined ? {} : { concurrencyByModule: { a: limits.moduleALimit } }),
		progressThrottleMs: 0,
	});
	const events = new EventRecorder(manager);
	const meter = new ConcurrencyMeter();
	const runs: Started[] = [];

	// The count of active runs must always equal the runs started with no terminal event yet.
	const checkCounts = (): void => {
		const stats = manager.getStats();
		const active = runs.filter((run) => events.terminal(run.runId).length === 0).length;
		expect(stats.queued + stats.running).toBe(manager.getActiveTaskCount());
		expect(manager.getActiveTaskCount()).toBe(active);
		expect(stats.completed + stats.failed + stats.cancelled).toBe(runs.length - active);
		expect(meter.max).toBeLessThanOrEqual(limits.concurrency);
		if (limits.moduleALimit !== undefined) expect(meter.maxByModule.get('a') ?? 0).toBeLessThanOrEqual(limits.moduleALimit);
	};

	try {
		for (const command of commands) {
			if (command.kind === 'start') {
				const task = controlledTask({ meter, moduleId: command.moduleId });
				const fn = command.honoursSignal
					? (ctx: Parameters<typeof task.fn>[0]) => {
							ctx.signal.addEventListener('abort', () => task.done.reject(ctx.signal.reason), { once: true });
							return task.fn(ctx);
						}
					: task.fn;
				const runId = manager.startTask(
					{ moduleId: command.moduleId, priority: command.priority, ...(command.timeoutMs === undefined ? {} : { timeoutMs: command.timeoutMs }) },
					fn,
				);
				runs.push({ runId, moduleId: command.moduleId, task, cancelResults: [] });
			} else if (command.kind === 'pause') {
				await sleep(command.ms);
			} else {
				const run = runs.length === 0 ? undefined : runs[command.pick % runs.length];
				if (run === undefined) continue;
				if (command.kind === 'cancel') run.cancelResults.push(manager.cancelTask(run.runId, 'property'));
				else if (command.kind === 'resolve') run.task.done.resolve(`result of ${run.runId}`);
				else if (command.kind === 'reject') run.task.done.reject(new Error(`failure of ${run.runId}`));
				else if (command.kind === 'progress' && run.task.context !== undefined) run.task.context.reportProgress(command.percent);
			}

			checkCounts();
		}

		// Let every task function settle, then wait for all of them and every write.
		for (const run of runs) run.task.done.resolve('final');
		const report = await manager.waitAll({ timeoutMs: 5000 });
		expect(report).toEqual({ settled: true, pending: [] });
		checkCounts();

		const stats = manager.getStats();
		expect(stats).toMatchObject({ queued: 0, running: 0, draining: 0, pendingWrites: 0 });
		let terminalEvents = 0;
		const byStatus: Record<string, number> = { completed: 0, failed: 0, cancelled: 0 };
		for (const run of runs) {
			const recorded = events.of(run.runId);
			// Only legal transitions, starting from QUEUED.
			expect(recorded[0]?.event).toBe('queued');
			let previous: RunStatus = 'queued';
			for (const { run: snapshot } of recorded.slice(1)) {
				expect(isLegalTransition(previous, snapshot.status), `${previous} → ${snapshot.status} of ${run.runId}`).toBe(true);
				previous = snapshot.status;
			}

			const terminal = events.terminal(run.runId);
			expect(terminal).toHaveLength(1);
			expect(recorded.at(-1)!.event).toBe(terminal[0]!.event);
			const status = terminal[0]!.run.status;
			expect(TERMINAL.has(status)).toBe(true);
			terminalEvents++;
			byStatus[status]!++;

			// The registry agrees with the manager.
			const stored = await registry.getRun(run.runId);
			expect(stored?.status, `stored status of ${run.runId}`).toBe(status);
			if (status === 'completed') expect(stored!.result).toEqual(terminal[0]!.run.result);

			// cancelTask returned true exactly once for runs that ended CANCELLED, and never otherwise.
			const results = await Promise.all(run.cancelResults);
			expect(results.filter(Boolean).length).toBe(status === 'cancelled' ? 1 : 0);
			// A run cancelled while QUEUED never had its function called.
			if (status === 'cancelled' && !events.names(run.runId).includes('started')) expect(run.task.calls).toBe(0);
		}

		expect(stats.completed + stats.failed + stats.cancelled).toBe(terminalEvents);
		expect({ completed: stats.completed, failed: stats.failed, cancelled: stats.cancelled }).toEqual(byStatus);
		expect(events.errors).toEqual([]);
		expect((await registry.listRuns({ limit: 1000 })).runs).toHaveLength(runs.length);
	} finally {
		for (const run of runs) run.task.done.resolve('final');
		await manager.shutdown({ graceMs: 0, abortGraceMs: 10 });
	}
}

describe('BackgroundTaskManager properties', () => {
	it('keeps lifecycle, counts, concurrency and registry consistent over random command sequences', async () => {
		await fc.assert(
			fc.asyncProperty(limitsArbitrary, fc.array(commandArbitrary, { minLength: 1, maxLength: 30 }), async (limits, commands) => {
				await runScenario(limits, commands);
			}),
			{ numRuns: 60 },
		);
	});

	it('ends every run of a burst in exactly one terminal state when cancels race completions', async () => {
		await fc.assert(
			fc.asyncProperty(
				fc.array(fc.record({ cancelFirst: fc.boolean(), outcome: fc.constantFrom('resolve' as const, 'reject' as const), pauseMs: fc.constantFrom(0, 1) }), {
					minLength: 1,
					maxLength: 12,
				}),
				async (plans) => {
					const commands: Command[] = plans.map(() => ({ kind: 'start', moduleId: 'a', priority: 'normal', timeoutMs: undefined, honoursSignal: false }));
					commands.push({ kind: 'pause', ms: 1 });
					plans.forEach((plan, index) => {
						const settle: Command = { kind: plan.outcome, pick: index };
						const cancel: Command = { kind: 'cancel', pick: index };
						commands.push(...(plan.cancelFirst ? [cancel, settle] : [settle, cancel]));
						if (plan.pauseMs > 0) commands.push({ kind: 'pause', ms: plan.pauseMs });
					});
					await runScenario({ concurrency: 4, moduleALimit: undefined }, commands);
				},
			),
			{ numRuns: 40 },
		);
	});
});
