/**
 * The errors of `runledger/client`. Each extends {@link RunledgerError}, so `isRunledgerError`
 * and matching on `code` work as for the rest of runledger.
 */
import { RunledgerError } from '../errors.js';

/** A response with a status the client does not accept. `body` is the parsed JSON body, else its text. */
export class HttpError extends RunledgerError {
	override name: string = 'HttpError';
	/** The HTTP status, e.g. `500`. */
	readonly status: number;
	/** The response body: parsed JSON when it was JSON (`{ error: { name, message } }` from runledger/http), else the text. */
	readonly body: unknown;
	/** The URL that answered. */
	readonly url: string;

	constructor(url: string, status: number, body: unknown, options?: { code?: string; message?: string }) {
		super(options?.message ?? `GET ${url} answered ${status}${describeBody(body)}`, { code: options?.code ?? 'ERR_HTTP' });
		this.url = url;
		this.status = status;
		this.body = body;
	}
}

/** The server answered 404: it knows no run at this URL. Never retried. `code` is `ERR_RUN_NOT_FOUND`, as for the core `RunNotFoundError`. */
export class RunNotFoundHttpError extends HttpError {
	override name = 'RunNotFoundHttpError' as const;

	constructor(url: string, body: unknown) {
		super(url, 404, body, { code: 'ERR_RUN_NOT_FOUND', message: `No run at ${url}${describeBody(body)}` });
	}
}

/** The request failed below HTTP (connection refused, reset, DNS, a body cut off) every time it was tried. `cause` holds the last failure. */
export class NetworkError extends RunledgerError {
	override name = 'NetworkError' as const;
	readonly url: string;

	constructor(url: string, cause: unknown) {
		super(`Request to ${url} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause, code: 'ERR_NETWORK' });
		this.url = url;
	}
}

/** A 2xx response that is not what the protocol promises: not JSON, not a run, or not `text/event-stream`. Never retried. */
export class InvalidResponseError extends RunledgerError {
	override name = 'InvalidResponseError' as const;
	readonly url: string;

	constructor(url: string, message: string, cause?: unknown) {
		super(`Invalid response from ${url}: ${message}`, { cause, code: 'ERR_INVALID_RESPONSE' });
		this.url = url;
	}
}

/**
 * `watchRun` could not (re)connect `attempts` times in a row. `cause` is the last failure:
 * an {@link HttpError} (a 5xx, 408 or 429), a {@link NetworkError}, or a stream that ended without a terminal event.
 */
export class ReconnectLimitError extends RunledgerError {
	override name = 'ReconnectLimitError' as const;
	readonly url: string;
	/** Consecutive failed connections, the last included. */
	readonly attempts: number;
	/** The id of the last event received, if any: where a new `watchRun` could resume with `lastEventId`. */
	readonly lastEventId: string | undefined;

	constructor(url: string, attempts: number, lastEventId: string | undefined, cause: unknown) {
		super(
			`Gave up on the event stream ${url} after ${attempts} failed connection(s) in a row: ${cause instanceof Error ? cause.message : String(cause)}`,
			{ cause, code: 'ERR_RECONNECT_LIMIT' },
		);
		this.url = url;
		this.attempts = attempts;
		this.lastEventId = lastEventId;
	}
}

function describeBody(body: unknown): string {
	if (typeof body === 'object' && body !== null) {
		const error = (body as { error?: unknown }).error;
		if (typeof error === 'object' && error !== null) {
			const { name, message } = error as { name?: unknown; message?: unknown };
			if (typeof message === 'string') return `: ${typeof name === 'string' ? `${name}: ` : ''}${message.slice(0, 200)}`;
		}
		return '';
	}
	return typeof body === 'string' && body.length > 0 ? `: ${body.slice(0, 200)}` : '';
}
