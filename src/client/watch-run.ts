/**
 * `watchRun(url)`: an async iterator over a run's Server-Sent Events stream
 * (`GET {base}/:runId/events` of runledger/http), read with `fetch` streaming — Node 20 has no
 * global EventSource — and resumed with `Last-Event-ID` when the connection drops.
 */
import { ValidationError } from '../errors.js';
import { isTerminalStatus, type Run } from '../run.js';
import { InvalidResponseError, NetworkError, ReconnectLimitError } from './errors.js';
import { abortReason, sleep } from './abortable-sleep.js';
import { assertFunction, assertPositiveNumber } from './option-checks.js';
import { type FetchFunction, asRun, errorFor, isTransientStatus, urlString } from './responses.js';
import { SseParser, type SseEvent } from './sse-parser.js';

/** Options of {@link watchRun}. */
export interface WatchRunOptions {
	/** Aborting it ends the iteration: the pending `next()` rejects with the signal's reason, and the stream is released. */
	readonly signal?: AbortSignal | undefined;
	/** Resume after this event id: sent as `Last-Event-ID` on the first request already. */
	readonly lastEventId?: string | undefined;
	/** How many times in a row a connection may fail (refused, 5xx/408/429, or dropped before any event) before the iteration throws `ReconnectLimitError`. @default 5 */
	readonly maxRetries?: number | undefined;
	/** The wait before reconnecting until the server sends its own `retry:`; doubled for each further failure in a row, up to 30 s (or the base wait, if longer). @default 2000 */
	readonly retryMs?: number | undefined;
	/** Extra request headers, such as `authorization`. */
	readonly headers?: Readonly<Record<string, string>> | undefined;
	/** @default globalThis.fetch */
	readonly fetch?: FetchFunction | undefined;
}

const MAX_RECONNECT_DELAY_MS = 30_000;

/**
 * Yields the run from every `status` and `progress` event of the stream at `url` (the run's
 * events URL), and returns after the run's terminal status (completed, failed or cancelled) has
 * been yielded — whether or not the server then ends the stream. Other event types and comments
 * (heartbeats) are skipped.
 *
 * When the connection fails or ends before the terminal event, it reconnects after the server's
 * `retry:` (else `retryMs`), sending `Last-Event-ID` with the last id received, so that the
 * server sends only newer state; consecutive failures wait twice as long each, up to 30 s.
 * A connection that delivered at least one event resets the count of failures.
 *
 * Throws (from the iteration): `RunNotFoundHttpError` on 404 and `HttpError` on other
 * non-transient statuses (neither retried); `InvalidResponseError` when the response is not
 * `text/event-stream` or an event's data is not a run; `ReconnectLimitError` after `maxRetries`
 * retries failed in a row; the signal's reason on abort; `ValidationError` on bad options.
 *
 * Breaking out of the loop (or calling `return()`) cancels the response body at once, and no
 * timer or listener is left behind.
 *
 * @example
 * for await (const run of watchRun(`${base}/tasks/${runId}/events`, { signal })) {
 *   render(run.status, run.progress?.percent);
 * }
 */
export async function* watchRun(url: string | URL, options: WatchRunOptions = {}): AsyncGenerator<Run, void, undefined> {
	const { signal, lastEventId: initialLastEventId, maxRetries = 5, retryMs = 2_000, headers, fetch: fetchFunction = globalThis.fetch } =
		options;
	assertPositiveNumber('maxRetries', maxRetries, { integer: true, allowZero: true });
	assertPositiveNumber('retryMs', retryMs, { allowZero: true });
	assertFunction('fetch', fetchFunction);
	if (initialLastEventId !== undefined && (typeof initialLastEventId !== 'string' || /[\0\r\n]/.test(initialLastEventId))) {
		throw new ValidationError('lastEventId', 'a string without NUL, CR or LF', initialLastEventId);
	}
	if (signal?.aborted === true) throw abortReason(signal);

	const href = urlString(url);
	const controller = new AbortController();
	const aborted = controller.signal;
	const onAbort = (): void => controller.abort(abortReason(signal!));
	signal?.addEventListener('abort', onAbort, { once: true });

	let lastEventId = initialLastEventId === '' ? undefined : initialLastEventId;
	let reconnectMs = retryMs;
	let failures = 0;

	try {
		for (;;) {
			let failure: unknown;
			let received = false;
			let response: Response | undefined;
			try {
				response = await fetchFunction(href, {
					method: 'GET',
					headers: {
						accept: 'text/event-stream',
						'cache-control': 'no-cache',
						...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }),
						...headers,
					},
					signal: aborted,
				});
			} catch (error) {
				if (aborted.aborted) throw aborted.reason;
				failure = new NetworkError(href, error);
			}

			if (response !== undefined) {
				if (!response.ok) {
					const error = await errorFor(href, response);
					if (aborted.aborted) throw aborted.reason;
					if (!isTransientStatus(response.status)) throw error;
					failure = error;
				} else {
					const type = response.headers.get('content-type') ?? '';
					if (!/^text\/event-stream\s*(;|$)/i.test(type) || response.body === null) {
						await response.body?.cancel().catch(() => {});
						throw new InvalidResponseError(href, `expected a text/event-stream body, got "${type}"`);
					}

					const events: SseEvent[] = [];
					const parser = new SseParser({
						onEvent: (event) => events.push(event),
						onRetry: (ms) => {
							reconnectMs = ms;
						},
					});
					const reader = response.body.getReader();
					try {
						for (;;) {
							let chunk: Awaited<ReturnType<typeof reader.read>>;
							try {
								chunk = await reader.read();
							} catch (error) {
								if (aborted.aborted) throw aborted.reason;
								failure = new NetworkError(href, error);
								break;
							}
							if (chunk.done) {
								parser.end();
								failure = new NetworkError(href, new Error('the event stream ended before the run ended'));
								break;
							}
							parser.push(chunk.value);
							while (events.length > 0) {
								const event = events.shift()!;
								if (event.lastEventId !== '') lastEventId = event.lastEventId;
								if (event.type !== 'status' && event.type !== 'progress') continue;
								const run = parseRun(href, event.data);
								received = true;
								yield run;
								if (isTerminalStatus(run.status)) return;
							}
						}
					} finally {
						await reader.cancel().catch(() => {});
					}
				}
			}

			if (received) failures = 0;
			failures++;
			if (failures > maxRetries) throw new ReconnectLimitError(href, failures, lastEventId, failure);
			const delay = Math.min(reconnectMs * 2 ** (failures - 1), Math.max(reconnectMs, MAX_RECONNECT_DELAY_MS));
			await sleep(delay, aborted);
		}
	} finally {
		signal?.removeEventListener('abort', onAbort);
		if (!aborted.aborted) controller.abort();
	}
}

function parseRun(href: string, data: string): Run {
	let value: unknown;
	try {
		value = JSON.parse(data) as unknown;
	} catch (error) {
		throw new InvalidResponseError(href, 'an event\'s data is not JSON', error);
	}
	return asRun(href, value);
}
