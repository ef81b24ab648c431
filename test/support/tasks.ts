/**
 * Task functions the test controls: each call waits for the test to resolve or reject it,
 * and a meter records how many executed at once.
 */
import type { TaskContext } from '../../src/index.js';
import { type Deferred, deferred } from './deferred.js';

/** Counts task functions executing at once and remembers the maximum. */
export class ConcurrencyMeter {
	current = 0;
	max = 0;
	readonly currentByModule = new Map<string, number>();
	readonly maxByModule = new Map<string, number>();

	enter(moduleId = ''): void {
		this.current++;
		this.max = Math.max(this.max, this.current);
		const inModule = (this.currentByModule.get(moduleId) ?? 0) + 1;
		this.currentByModule.set(moduleId, inModule);
		this.maxByModule.set(moduleId, Math.max(this.maxByModule.get(moduleId) ?? 0, inModule));
	}

	leave(moduleId = ''): void {
		this.current--;
		this.currentByModule.set(moduleId, (this.currentByModule.get(moduleId) ?? 0) - 1);
	}
}

/** A task whose function waits for the test: `calls` counts calls, `done` settles it, `context` is the last context seen. */
export interface ControlledTask<R = unknown> {
	readonly fn: (context: TaskContext) => Promise<R>;
	readonly done: Deferred<R>;
	/** Resolves with the context once the function has been called. */
	readonly called: Promise<TaskContext>;
	readonly calls: number;
	readonly context: TaskContext | undefined;
}

export function controlledTask<R = unknown>(options: { meter?: ConcurrencyMeter; moduleId?: string } = {}): ControlledTask<R> {
	const done = deferred<R>();
	const called = deferred<TaskContext>();
	let calls = 0;
	let context: TaskContext | undefined;
	return {
		done,
		called: called.promise,
		get calls() {
			return calls;
		},
		get context() {
			return context;
		},
		fn: async (ctx: TaskContext) => {
			calls++;
			context = ctx;
			options.meter?.enter(options.moduleId);
			called.resolve(ctx);
			try {
				return await done.promise;
			} finally {
				options.meter?.leave(options.moduleId);
			}
		},
	};
}
