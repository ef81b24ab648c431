/** Helpers shared by the bad-input suites of both registries. */

/** What `fn` threw synchronously, or undefined. */
export function thrownBy(fn: () => unknown): unknown {
	try {
		fn();
	} catch (error) {
		return error;
	}
	return undefined;
}

/** The tail `cap()` of src/error-info.ts appends to a cut text. */
export const cutTail = (length: number, max: number): string => `… (${length - max} more characters)`;

/** The longest text `cap(text, max)` of src/error-info.ts can make, whatever the length of `text`. */
export const cappedLength = (max: number): number => max + cutTail(Number.MAX_SAFE_INTEGER, 0).length;
