/**
 * Turning whatever a task threw into the serializable `{ name, message, stack?, code? }`
 * stored on a failed run — for Error objects and for strings, null, frozen or hostile values.
 */
import { type RunledgerError, cancelledMessage } from './errors.js';
import type { RunErrorInfo } from './run.js';

/** Stored messages are cut to this many characters so one failure cannot bloat the registry. */
export const MAX_ERROR_MESSAGE_LENGTH = 4096;
/** Stored stacks are cut to this many characters. */
export const MAX_ERROR_STACK_LENGTH = 16_384;

/**
 * How the manager records an error it made itself to say what happened to a run (a cancel, a
 * timeout, a conflict): name, message and code, without the stack, which would only point into
 * runledger (and cost a formatted stack trace per run, stored with it).
 */
export function ownErrorInfo(error: RunledgerError): RunErrorInfo {
	return { name: error.name, message: error.message, code: error.code };
}

/** What a cancelled run records: a `CancelledError`'s name, message and code, without making one. */
export function cancelledInfo(runId: string, reason: string | undefined): RunErrorInfo {
	return { name: 'CancelledError', message: cancelledMessage(runId, reason), code: 'ERR_CANCELLED' };
}

export function toErrorInfo(value: unknown): RunErrorInfo {
	try {
		return describeThrown(value);
	} catch {
		// A revoked Proxy, say: even `instanceof` and `in` throw on it.
		return { name: 'Error', message: 'Task threw a value that cannot be inspected' };
	}
}

function describeThrown(value: unknown): RunErrorInfo {
	if (value instanceof Error || (typeof value === 'object' && value !== null && 'message' in value)) {
		// Property reads go through getters that may throw: read each one defensively.
		const name = read(value, 'name');
		const message = read(value, 'message');
		const stack = read(value, 'stack');
		const code = read(value, 'code');
		const info: { name: string; message: string; stack?: string; code?: string } = {
			name: typeof name === 'string' && name !== '' ? cap(name, 200) : 'Error',
			message: typeof message === 'string' ? cap(message, MAX_ERROR_MESSAGE_LENGTH) : safeString(message),
		};
		if (typeof stack === 'string') info.stack = cap(stack, MAX_ERROR_STACK_LENGTH);
		if (typeof code === 'string' || typeof code === 'number') info.code = cap(String(code), 200);
		return info;
	}

	if (typeof value === 'string') {
		return { name: 'Error', message: cap(value, MAX_ERROR_MESSAGE_LENGTH) };
	}

	return { name: 'Error', message: `Task threw a non-Error value: ${safeString(value)}` };
}

function read(object: object, key: string): unknown {
	try {
		return (object as Record<string, unknown>)[key];
	} catch {
		return undefined;
	}
}

function safeString(value: unknown): string {
	try {
		return cap(typeof value === 'symbol' ? value.toString() : String(value), MAX_ERROR_MESSAGE_LENGTH);
	} catch {
		return Object.prototype.toString.call(value);
	}
}

function cap(text: string, max: number): string {
	return text.length > max ? `${text.slice(0, max)}… (${text.length - max} more characters)` : text;
}
