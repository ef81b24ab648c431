/**
 * Records every event a manager emits, in order, so that tests can check the sequence of
 * states each run went through.
 */
import type { BackgroundTaskManager, Run, RunStatus, RunledgerError } from '../../src/index.js';

export const RUN_EVENTS = ['queued', 'started', 'progress', 'completed', 'failed', 'cancelled'] as const;
export type RunEvent = (typeof RUN_EVENTS)[number];
export const TERMINAL_EVENTS: ReadonlySet<RunEvent> = new Set<RunEvent>(['completed', 'failed', 'cancelled']);

export interface RecordedEvent {
	readonly event: RunEvent;
	readonly run: Run;
}

export class EventRecorder {
	readonly events: RecordedEvent[] = [];
	readonly errors: RunledgerError[] = [];

	constructor(manager: BackgroundTaskManager) {
		for (const event of RUN_EVENTS) {
			manager.on(event, (run: Run) => {
				this.events.push({ event, run });
			});
		}

		manager.on('error', (error: RunledgerError) => {
			this.errors.push(error);
		});
	}

	/** The events of one run, in order. */
	of(runId: string): RecordedEvent[] {
		return this.events.filter((recorded) => recorded.run.runId === runId);
	}

	/** The event names of one run, in order. */
	names(runId: string): RunEvent[] {
		return this.of(runId).map((recorded) => recorded.event);
	}

	/** The statuses the events of one run carried, in order. */
	statuses(runId: string): RunStatus[] {
		return this.of(runId).map((recorded) => recorded.run.status);
	}

	/** The terminal events of one run (there must be exactly one once it ended). */
	terminal(runId: string): RecordedEvent[] {
		return this.of(runId).filter((recorded) => TERMINAL_EVENTS.has(recorded.event));
	}

	/** The run ids of `event`, in the order they were emitted. */
	idsOf(event: RunEvent): string[] {
		return this.events.filter((recorded) => recorded.event === event).map((recorded) => recorded.run.runId);
	}

	count(event: RunEvent): number {
		return this.events.filter((recorded) => recorded.event === event).length;
	}
}
