/** The client's side of HTTP: the `fetch` it calls, which statuses are worth a retry, and reading and checking response bodies. */
import { isRunStatus, type Run } from '../run.js';
import { HttpError, InvalidResponseError, RunNotFoundHttpError } from './errors.js';

/** The `fetch` the client calls: the global one, or any function with its signature (undici, a wrapper adding auth headers). */
export type FetchFunction = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Statuses worth another try: the server or a proxy is overloaded, restarting or timed out. */
export function isTransientStatus(status: number): boolean {
	return status === 408 || status === 429 || status === 500 || status === 502 || status === 503 || status === 504;
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
