/**
 * A service with a live progress page: submit a "video render", follow it in the browser through
 * Server-Sent Events, cancel it. runledger/http serves the task routes; this file only adds the
 * route that starts work and the static page.
 *
 *   PORT=3000 npx tsx examples/http-server.ts      (PORT unset or 0: a free port is chosen and printed)
 *   open http://127.0.0.1:3000/
 *
 *   curl -si -X POST 127.0.0.1:3000/videos -H 'content-type: application/json' -d '{"title":"intro","seconds":5}'
 *     → 202 { "runId": "…", "statusUrl": "/tasks/…", "eventsUrl": "/tasks/…/events" }
 *   curl -s 127.0.0.1:3000/tasks/<runId>            → the run
 *   curl -sN 127.0.0.1:3000/tasks/<runId>/events    → its event stream, until it ends
 *   curl -s -X POST 127.0.0.1:3000/tasks/<runId>/cancel
 *
 * From Node, `runledger/client` follows a run: `waitForRun(statusUrl)` or `for await (const run of watchRun(eventsUrl))`.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { createTaskHandler } from '../src/http/index.js';
import { BackgroundTaskManager, MemoryRunRegistry, QueueFullError, ShutdownError } from '../src/index.js';

const PAGE = fileURLToPath(new URL('./public/index.html', import.meta.url));
const MAX_BODY_BYTES = 4 * 1024;
/** Progress is reported this many times per render, whatever its length. */
const STEPS = 20;

export interface StartServerOptions {
	/** 0 picks a free port. @default 0 */
	readonly port?: number;
	/** @default '127.0.0.1' */
	readonly host?: string;
}

export interface RunningServer {
	/** e.g. `http://127.0.0.1:3000` */
	readonly url: string;
	readonly server: Server;
	readonly manager: BackgroundTaskManager;
	/** Ends the event streams, closes the server and shuts the manager down (running renders are cancelled). */
	close(): Promise<void>;
}

interface VideoRequest {
	readonly title: string;
	readonly seconds: number;
}

class RequestError extends Error {
	constructor(
		readonly status: number,
		readonly errorName: string,
		message: string,
		readonly field?: string,
	) {
		super(message);
	}
}

function sendJson(response: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
	const json = JSON.stringify(body);
	response.writeHead(status, {
		'content-type': 'application/json; charset=utf-8',
		'content-length': Buffer.byteLength(json),
		'cache-control': 'no-store',
		...headers,
	});
	response.end(json);
}

async function readJson(request: IncomingMessage): Promise<unknown> {
	if (!/^application\/json\b/i.test(request.headers['content-type'] ?? '')) {
		throw new RequestError(415, 'UnsupportedMediaTypeError', 'Send the body as application/json');
	}
	const chunks: Buffer[] = [];
	let size = 0;
	for await (const chunk of request) {
		size += (chunk as Buffer).length;
		if (size > MAX_BODY_BYTES) throw new RequestError(413, 'PayloadTooLargeError', `The body may be at most ${MAX_BODY_BYTES} bytes`);
		chunks.push(chunk as Buffer);
	}
	try {
		return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
	} catch {
		throw new RequestError(400, 'ValidationError', 'The body is not valid JSON');
	}
}

/** `{ title, seconds? }`: a title of 1 to 100 characters, a duration from 0.5 to 120 seconds (default 5). */
export function parseVideoRequest(body: unknown): VideoRequest {
	const invalid = (field: string, message: string): RequestError => new RequestError(400, 'ValidationError', message, field);
	if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('body', 'The body must be a JSON object');
	const { title, seconds = 5, ...rest } = body as Record<string, unknown>;
	const unknown = Object.keys(rest);
	if (unknown.length > 0) throw invalid(unknown[0]!, `Unknown field(s): ${unknown.join(', ')}`);
	if (typeof title !== 'string' || title.trim().length === 0 || title.length > 100) {
		throw invalid('title', '`title` must be a string of 1 to 100 characters');
	}
	if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0.5 || seconds > 120) {
		throw invalid('seconds', '`seconds` must be a number from 0.5 to 120');
	}
	return { title: title.trim(), seconds };
}

/** Starts the service; resolves once it listens. */
export async function startServer(options: StartServerOptions = {}): Promise<RunningServer> {
	const { port = 0, host = '127.0.0.1' } = options;
	const page = await readFile(PAGE);
	const manager = new BackgroundTaskManager(new MemoryRunRegistry({ maxRuns: 1_000 }), {
		concurrency: 4,
		concurrencyByModule: { 'video-render': 2 },
		maxQueued: 100,
		retention: { maxAgeMs: 60 * 60_000 },
	});
	manager.on('error', (error) => console.error(`[runledger] ${error.code}: ${error.message}`));
	const tasks = createTaskHandler(manager, { basePath: '/tasks', logger: console });

	function startRender(video: VideoRequest): string {
		return manager.startTask(
			{ moduleId: 'video-render', moduleName: 'Video render', parameters: video },
			async ({ runId, signal, parameters, reportProgress }) => {
				for (let step = 1; step <= STEPS; step++) {
					await delay((parameters.seconds * 1000) / STEPS, undefined, { signal }); // rejects when the run is cancelled
					reportProgress((step * 100) / STEPS, `frame ${step * 24} of ${STEPS * 24}`);
				}
				return { url: `/videos/${encodeURIComponent(runId)}.mp4`, title: parameters.title };
			},
		);
	}

	async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
		const path = (request.url ?? '/').split('?')[0];
		const method = request.method ?? 'GET';
		if (path === '/videos') {
			if (method !== 'POST') throw new RequestError(405, 'MethodNotAllowedError', `${method} is not allowed here`);
			const runId = startRender(parseVideoRequest(await readJson(request)));
			const statusUrl = `/tasks/${encodeURIComponent(runId)}`;
			sendJson(response, 202, { runId, statusUrl, eventsUrl: `${statusUrl}/events` }, { location: statusUrl });
			return;
		}
		if (path === '/' || path === '/index.html') {
			if (method !== 'GET' && method !== 'HEAD') throw new RequestError(405, 'MethodNotAllowedError', `${method} is not allowed here`);
			response.writeHead(200, {
				'content-type': 'text/html; charset=utf-8',
				'content-length': page.length,
				'cache-control': 'no-store',
				// Everything the page needs is inline or on this origin.
				'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'",
			});
			response.end(method === 'HEAD' ? undefined : page);
			return;
		}
		if (path === '/favicon.ico') {
			response.writeHead(204).end();
			return;
		}
		// Everything else: the task routes, which answer 404 JSON outside /tasks.
		tasks(request, response);
	}

	const server = createServer((request, response) => {
		handle(request, response).catch((error: unknown) => {
			if (response.headersSent) {
				response.destroy();
			} else if (error instanceof RequestError) {
				sendJson(response, error.status, {
					error: { name: error.errorName, message: error.message, ...(error.field === undefined ? {} : { field: error.field }) },
				});
			} else if (error instanceof QueueFullError) {
				sendJson(response, 503, { error: { name: error.name, message: 'Too many renders are waiting; retry later' } }, { 'retry-after': '5' });
			} else if (error instanceof ShutdownError) {
				sendJson(response, 503, { error: { name: error.name, message: 'The server is shutting down' } });
			} else {
				console.error('unhandled error', error);
				sendJson(response, 500, { error: { name: 'InternalError', message: 'Internal error' } });
			}
		});
	});

	await new Promise<void>((resolveListen, reject) => {
		server.once('error', reject);
		server.listen(port, host, () => {
			server.off('error', reject);
			resolveListen();
		});
	});
	const { port: chosen } = server.address() as AddressInfo;

	let closing: Promise<void> | undefined;
	return {
		url: `http://${host}:${chosen}`,
		server,
		manager,
		close() {
			closing ??= (async () => {
				tasks.closeStreams();
				const closed = new Promise<void>((resolveClose) => server.close(() => resolveClose()));
				server.closeIdleConnections();
				await manager.shutdown({ graceMs: 1_000, abortGraceMs: 1_000 });
				tasks.closeStreams();
				server.closeAllConnections();
				await closed;
			})();
			return closing;
		},
	};
}

// Run as a script (`npx tsx examples/http-server.ts`), not when imported by the browser test.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
	const port = Number(process.env['PORT'] ?? 0);
	if (!Number.isInteger(port) || port < 0 || port > 65_535) {
		console.error(`PORT must be an integer from 0 to 65535, got "${process.env['PORT']}"`);
		process.exit(2);
	}
	const running = await startServer({ port });
	console.log(`listening on ${running.url}`);
	for (const signal of ['SIGTERM', 'SIGINT'] as const) {
		process.once(signal, () => {
			console.log(`${signal}: closing`);
			void running.close().then(() => process.exit(0));
		});
	}
}
