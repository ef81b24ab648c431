/**
 * `waitForRun(url)`: polls a run's status URL (`GET {base}/:runId` of runledger/http) until the
 * run ends, with exponential backoff, equal jitter, stall detection, timeout and abort.
 */
import { TimeoutError, ValidationError } from '../errors.js';
import { isTerminalStatus, type Run } from '../run.js';
import { InvalidResponseError, NetworkError } from './errors.js';
import { abortReason, sleep } from './abortable-sleep.js';
import { assertFunction, assertPositiveNumber } from './option-checks.js';
import { type FetchFunction, asRun, errorFor, isTransientStatus, urlString } from './responses.js';

/** Options of {@link waitForRun}. */
export interface WaitForRunOptions {
	/** The first delay between two polls, and the delay again whenever the run moves. @default 500 */
	readonly intervalMs?: number | undefined;
	/** The delay doubles after each poll in which the run did not move, up to this. @default 10_000 */
	readonly maxIntervalMs?: number | undefined;
	/** Rejects with a `TimeoutError` (code `ERR_TIMEOUT`) when the run has not ended after this long. @default none */
	readonly timeoutMs?: number | undefined;
	/** Aborting it rejects with the signal's reason (an `AbortError` DOMException if it has none). */
	readonly signal?: AbortSignal | undefined;
	/** Called with the run whenever its status or `progress.percent` changed since the previous poll: the first poll, every move, the final run. */
	readonly onProgress?: ((run: Run) => void) | undefined;
	/** Called when the status and `progress.percent` have not moved for `stallMs`, and again after each further `stallMs` without a move. */
	readonly onStall?: ((run: Run, stalledMs: number) => void) | undefined;
	/** @default 60_000 */
	readonly stallMs?: number | undefined;
	/** How many times in a row a transient failure (network error, 408, 429, 500, 502, 503, 504) is retried before the wait rejects. @default 3 */
	readonly retries?: number | undefined;
	/** Extra request headers, such as `authorization`. */
	readonly headers?: Readonly<Record<string, string>> | undefined;
	/** @default globalThis.fetch */
	readonly fetch?: FetchFunction | undefined;
}

/**
 * Polls `url` (the run's status URL, answering the run as JSON) until the run is completed,
 * failed or cancelled, and resolves with that run: a failed or cancelled run resolves too,
 * inspect `run.status`.
 *
 * The first request is sent at once. The delay before the next one starts at `intervalMs` and
 * doubles after every poll in which neither the status nor `progress.percent` moved, up to
 * `maxIntervalMs`; a move resets it to `intervalMs`. Each delay is drawn with *equal jitter*:
 * uniformly from `[delay / 2, delay]`, so that many clients do not poll in step while the
 * interval still grows. When `onStall` is given, a poll is also made when a stall would be due.
 *
 * Transient failures (network errors, 408, 429, 500, 502, 503, 504) are retried `retries`
 * times in a row on the same backoff. Rejects with:
 * - `RunNotFoundHttpError` on 404 (never retried);
 * - `HttpError` (`status`, `body`) on any other non-2xx, once retries are used up for transient ones;
 * - `NetworkError` when the last retry failed below HTTP;
 * - `InvalidResponseError` when a 2xx body is not a run;
 * - `TimeoutError` after `timeoutMs`; the signal's reason on abort; `ValidationError` on bad options;
 * - whatever `onProgress` or `onStall` throws.
 * Every timer and listener is released when the promise settles, and an in-flight request is aborted.
 */
export async function waitForRun(url: string | URL, options: WaitForRunOptions = {}): Promise<Run> {
	const {
		intervalMs = 500,
		maxIntervalMs = Math.max(10_000, intervalMs),
		timeoutMs,
		signal,
		onProgress,
		onStall,
		stallMs = 60_000,
		retries = 3,
		headers,
		fetch: fetchFunction = globalThis.fetch,
	} = options;
	assertPositiveNumber('intervalMs', intervalMs);
	assertPositiveNumber('maxIntervalMs', maxIntervalMs);
	if (maxIntervalMs < intervalMs) throw new ValidationError('maxIntervalMs', `a number >= intervalMs (${intervalMs})`, maxIntervalMs);
	if (timeoutMs !== undefined) assertPositiveNumber('timeoutMs', timeoutMs);
	assertPositiveNumber('stallMs', stallMs);
	assertPositiveNumber('retries', retries, { integer: true, allowZero: true });
	assertFunction('fetch', fetchFunction);
	if (onProgress !== undefined) assertFunction('onProgress', onProgress);
	if (onStall !== undefined) assertFunction('onStall', onStall);
	if (signal?.aborted === true) throw abortReason(signal);

	const href = urlString(url);
	const controller = new AbortController();
	const onAbort = (): void => controller.abort(abortReason(signal!));
	signal?.addEventListener('abort', onAbort, { once: true });
	const timer =
		timeoutMs === undefined
			? undefined
			: setTimeout(
					() => controller.abort(new TimeoutError(`The run at ${href} did not end within ${timeoutMs} ms`, timeoutMs)),
					timeoutMs,
				);

	try {
		return await poll();
	} catch (error) {
		// Whatever the abort interrupted (fetch, body, sleep), the caller gets the abort's reason.
		if (controller.signal.aborted) throw controller.signal.reason;
		throw error;
	} finally {
		clearTimeout(timer);
		signal?.removeEventListener('abort', onAbort);
		if (!controller.signal.aborted) controller.abort();
	}

	async function poll(): Promise<Run> {
		const aborted = controller.signal;
		let base = intervalMs;
		let failures = 0;
		let previous: Run | undefined;
		let lastMoveAt = performance.now();
		let nextStallAt = lastMoveAt + stallMs;

		for (;;) {
			const outcome = await request();
			const now = performance.now();
			if (outcome.run === undefined) {
				failures++;
				if (failures > retries) throw outcome.failure;
			} else {
				failures = 0;
				const run = outcome.run;
				const moved =
					previous === undefined || run.status !== previous.status || run.progress?.percent !== previous.progress?.percent;
				previous = run;
				if (moved) {
					lastMoveAt = now;
					nextStallAt = now + stallMs;
					base = intervalMs;
					onProgress?.(run);
				}
				if (isTerminalStatus(run.status)) return run;
				if (!moved && onStall !== undefined && now >= nextStallAt) {
					while (nextStallAt <= now) nextStallAt += stallMs;
					onStall(run, now - lastMoveAt);
				}
			}

			let delay = base / 2 + Math.random() * (base / 2);
			base = Math.min(base * 2, maxIntervalMs);
			// Poll when a stall would be due, so that onStall is not late by up to a whole interval.
			if (onStall !== undefined && previous !== undefined) delay = Math.min(delay, Math.max(1, nextStallAt - performance.now()));
			await sleep(delay, aborted);
		}
	}

	async function request(): Promise<{ run: Run; failure?: never } | { run?: never; failure: unknown }> {
		let response: Response;
		try {
			response = await fetchFunction(href, {
				method: 'GET',
				headers: { accept: 'application/json', 'cache-control': 'no-cache', ...headers },
				signal: controller.signal,
			});
		} catch (error) {
			if (controller.signal.aborted) throw controller.signal.reason;
			return { failure: new NetworkError(href, error) };
		}

		if (!response.ok) {
			const error = await errorFor(href, response);
			if (isTransientStatus(response.status)) return { failure: error };
			throw error;
		}

		let text: string;
		try {
			text = await response.text();
		} catch (error) {
			if (controller.signal.aborted) throw controller.signal.reason;
			return { failure: new NetworkError(href, error) };
		}
		let body: unknown;
		try {
			body = JSON.parse(text) as unknown;
		} catch (error) {
			throw new InvalidResponseError(href, 'the body is not JSON', error);
		}
		return { run: asRun(href, body) };
	}
}
