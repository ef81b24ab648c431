/**
 * Small async helpers for the manager tests: promises the test settles by hand, short sleeps
 * on real timers, and polling for a condition.
 */

/** A promise with its resolve and reject exposed, and whether it has settled. */
export interface Deferred<T> {
	readonly promise: Promise<T>;
	readonly settled: boolean;
	resolve(value: T): void;
	reject(reason: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
	let resolve!: (value: T) => void;
	let reject!: (reason: unknown) => void;
	let settled = false;
	const promise = new Promise<T>((res, rej) => {
		resolve = res;
		reject = rej;
	});
	// A deferred that is rejected while nobody listens must not count as an unhandled rejection.
	promise.catch(() => {});
	return {
		promise,
		get settled() {
			return settled;
		},
		resolve(value: T) {
			settled = true;
			resolve(value);
		},
		reject(reason: unknown) {
			settled = true;
			reject(reason);
		},
	};
}

/** Waits `ms` on a real timer. */
export function sleep(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Lets queued microtasks and one macrotask turn run. */
export function tick(): Promise<void> {
	return new Promise((resolve) => setImmediate(resolve));
}

/** Polls `condition` every few ms until it holds; fails with `message` after `timeoutMs`. */
export async function until(
	condition: () => boolean | Promise<boolean>,
	message = 'condition',
	timeoutMs = 3000,
): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		if (await condition()) return;
		if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${message}`);
		await sleep(5);
	}
}

/** A promise that never settles: the work of a task that ignores its signal forever. */
export function never<T = never>(): Promise<T> {
	return new Promise<T>(() => {});
}
