/**
 * The cap on a stored result (`maxResultBytes`), shared by the registries that enforce it: what
 * the option accepts, and the check of a result's JSON text against it.
 */
import { ResultTooLargeError, ValidationError } from './errors.js';

/** The default `maxResultBytes`: 1 MiB of JSON. */
export const DEFAULT_MAX_RESULT_BYTES = 1_048_576;

/**
 * `value` as a `maxResultBytes` option: a positive integer, or `Infinity` for no cap.
 * @throws {ValidationError} Otherwise (`field` names it).
 */
export function parseMaxResultBytes(value: unknown, field = 'maxResultBytes'): number {
	if (value === Number.POSITIVE_INFINITY || (Number.isSafeInteger(value) && (value as number) >= 1)) return value as number;
	throw new ValidationError(field, 'a positive integer (bytes) or Infinity', value);
}

/**
 * Throws a {@link ResultTooLargeError} when `json`, the JSON text of a result, is more than
 * `maxBytes` bytes of UTF-8.
 */
export function assertResultSize(json: string, maxBytes: number): void {
	// A UTF-16 code unit is at most 3 bytes of UTF-8: most results need no counting.
	if (json.length * 3 <= maxBytes) return;
	const bytes = Buffer.byteLength(json, 'utf8');
	if (bytes > maxBytes) throw new ResultTooLargeError(bytes, maxBytes);
}
