/** Helpers shared by `waitForRun` and `watchRun`: option checks, abortable sleeps, response bodies. */
import { ValidationError } from '../errors.js';
import { isRunStatus, type Run } from '../run.js';
import { HttpError, InvalidResponseError, RunNotFoundHttpError } from './errors.js';

/** The `fetch` the client calls: the global one, or any function with its signature (undici, a wrapper adding auth headers). */
export type FetchFunction = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Statuses worth another try: the server or a proxy is overloaded, restarting or timed out. */
export function isTransientStatus(status: number): boolean {
	return status === 408 || status === 429 || status === 500 || status === 502 || status === 503 || status === 504;
}

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

/** The reason a signal aborted with, or an `AbortError` DOMException when it has none. */
export function abortReason(signal: AbortSignal): unknown {
	return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts; the timer never outlives the call. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
	return new Promise((resolve, reject) => {
		if (signal.aborted) {
			reject(abortReason(signal));
			return;
		}
		const onAbort = (): void => {
			clearTimeout(timer);
			reject(abortReason(signal));
		};
		const timer = setTimeout(() => {
			signal.removeEventListener('abort', onAbort);
			resolve();
		}, ms);
		signal.addEventListener('abort', onAbort, { once: true });
	});
}

/** Reads a body as JSON when it parses, else as text; `undefined` if it cannot be read at all. */
export async function readBody(response: Response): Promise<unknown> {
	let text: string;
	try {
		text = await response.text();
	} catch {
		return undefined;
	}
	try {
		return JSON.parse(text) as unknown;
	} catch {
		return text;
	}
}

/** The typed error for a non-2xx response: 404 → {@link RunNotFoundHttpError}, else {@link HttpError}. */
export async function errorFor(url: string, response: Response): Promise<HttpError> {
	const body = await readBody(response);
	return response.status === 404 ? new RunNotFoundHttpError(url, body) : new HttpError(url, response.status, body);
}

/** Checks that a parsed body is a run: an object with a string `runId` and a known `status`. */
export function asRun(url: string, value: unknown): Run {
	if (typeof value !== 'object' || value === null || Array.isArray(value)) {
		throw new InvalidResponseError(url, 'expected a run object');
	}
	const { runId, status } = value as { runId?: unknown; status?: unknown };
	if (typeof runId !== 'string' || !isRunStatus(status)) {
		throw new InvalidResponseError(url, 'expected a run with a string `runId` and a known `status`');
	}
	return value as Run;
}

/** `url` as a string, for messages and errors. */
export function urlString(url: string | URL): string {
	return typeof url === 'string' ? url : url.href;
}
