import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { sleep } from './deferred.js';

/**
 * Fails the test after which an unhandled rejection or uncaught exception was seen: none may
 * ever escape the library.
 */
export function failOnUnhandledErrorsAfterEach(): void {
	const escaped: unknown[] = [];
	const onEscaped = (reason: unknown): void => {
		escaped.push(reason);
	};

	beforeAll(() => {
		process.on('unhandledRejection', onEscaped);
		process.on('uncaughtException', onEscaped);
	});

	afterAll(() => {
		process.off('unhandledRejection', onEscaped);
		process.off('uncaughtException', onEscaped);
	});

	afterEach(async () => {
		// Rejections are reported as unhandled after the microtask queue drains: give them a turn.
		await sleep(5);
		// Emptied before the check, so that one escape fails the test it happened in, not every later one.
		const seen = escaped.splice(0);
		expect(seen).toEqual([]);
	});
}
