/** Checks of the client's options: each failure a `ValidationError` naming the option. */
import { ValidationError } from '../errors.js';

export function assertPositiveNumber(field: string, value: unknown, { integer = false, allowZero = false } = {}): void {
	if (
		typeof value !== 'number' ||
		!Number.isFinite(value) ||
		(integer && !Number.isInteger(value)) ||
		value < 0 ||
		(!allowZero && value === 0)
	) {
		throw new ValidationError(field, `a finite ${integer ? 'integer' : 'number'} ${allowZero ? '>= 0' : '> 0'}`, value);
	}
}

export function assertFunction(field: string, value: unknown): void {
	if (typeof value !== 'function') throw new ValidationError(field, 'a function', value);
}
