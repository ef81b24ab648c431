/**
 * Servers that mount the task handler three ways (node:http, Express, Fastify) on 127.0.0.1, and
 * a raw reader of Server-Sent Events streams that keeps every byte, for framing checks.
 */
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import express from 'express';
import Fastify from 'fastify';

import type { BackgroundTaskManager } from '../../src/index.js';
import { type TaskHandler, type TaskHandlerOptions, createTaskHandler, fastifyTaskPlugin } from '../../src/http/index.js';

export type Mounting = 'node:http' | 'express' | 'fastify';
export const MOUNTINGS: readonly Mounting[] = ['node:http', 'express', 'fastify'];

export interface TestServer {
	/** `http://127.0.0.1:<port>`. */
	readonly origin: string;
	readonly handler: TaskHandler;
	readonly mounting: Mounting;
	close(): Promise<void>;
}

const servers: TestServer[] = [];

/**
 * Serves `manager` under `options.basePath` (default `/tasks`) and, besides it, `GET /other` →
 * 200 `other`, a route of the host that the handler must leave alone.
 */
export async function startServer(mounting: Mounting, manager: BackgroundTaskManager, options?: TaskHandlerOptions): Promise<TestServer> {
	let server: TestServer;
	if (mounting === 'fastify') {
		const app = Fastify({ forceCloseConnections: true });
		let handler: TaskHandler | undefined;
		await app.register(fastifyTaskPlugin, { manager, ...options, onHandler: (created) => (handler = created) });
		app.get('/other', async () => 'other');
		await app.listen({ port: 0, host: '127.0.0.1' });
		const { port } = app.server.address() as AddressInfo;
		server = {
			origin: `http://127.0.0.1:${port}`,
			handler: handler!,
			mounting,
			close: async () => {
				handler!.closeStreams();
				await app.close();
			},
		};
	} else {
		const handler = createTaskHandler(manager, options);
		let http: Server;
		if (mounting === 'express') {
			const app = express();
			app.use(handler);
			app.get('/other', (_req, res) => {
				res.type('text/plain').send('other');
			});
			http = createServer(app);
		} else {
			http = createServer((req, res) => {
				if (req.url === '/other') {
					res.end('other');
					return;
				}

				handler(req, res);
			});
		}

		await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
		const { port } = http.address() as AddressInfo;
		server = {
			origin: `http://127.0.0.1:${port}`,
			handler,
			mounting,
			close: async () => {
				handler.closeStreams();
				const closed = new Promise<void>((resolve) => http.close(() => resolve()));
				http.closeAllConnections();
				await closed;
			},
		};
	}

	servers.push(server);
	return server;
}

/** Closes every server started since the last call. */
export async function closeServers(): Promise<void> {
	await Promise.all(servers.splice(0).map((server) => server.close()));
}

export interface JsonResponse<T = unknown> {
	readonly status: number;
	readonly headers: Headers;
	readonly text: string;
	readonly body: T;
}

/** A request whose answer is read whole; `body` is the parsed JSON (undefined when the text is empty). */
export async function request<T = unknown>(url: string, init?: RequestInit): Promise<JsonResponse<T>> {
	const response = await fetch(url, init);
	const text = await response.text();
	let body: unknown;
	if (text !== '') {
		try {
			body = JSON.parse(text);
		} catch {
			body = undefined;
		}
	}

	return { status: response.status, headers: response.headers, text, body: body as T };
}

/** One parsed block of an event stream. */
export interface StreamBlock {
	readonly comment?: string;
	readonly id?: string;
	readonly event?: string;
	readonly data?: string;
	readonly retry?: string;
}

/** An event block, its data parsed. */
export interface StreamEvent<T = Record<string, unknown>> {
	readonly id: number;
	readonly event: string;
	readonly data: T;
}

/** Reads an event stream into raw text and parsed blocks, as they come. */
export class StreamReader {
	readonly response: Response;
	/** Every byte so far, decoded. */
	text = '';
	readonly blocks: StreamBlock[] = [];
	#ended = false;
	readonly #controller: AbortController;
	readonly #done: Promise<void>;
	#waiters: Array<() => void> = [];

	private constructor(response: Response, controller: AbortController) {
		this.response = response;
		this.#controller = controller;
		this.#done = this.#read();
	}

	static async open(url: string, headers: Record<string, string> = {}): Promise<StreamReader> {
		const controller = new AbortController();
		const response = await fetch(url, { headers: { Accept: 'text/event-stream', ...headers }, signal: controller.signal });
		return new StreamReader(response, controller);
	}

	/** Whether the server ended the stream. */
	get ended(): boolean {
		return this.#ended;
	}

	/** The event blocks (with a `data` field) so far, parsed. */
	get events(): StreamEvent[] {
		return this.blocks
			.filter((block) => block.data !== undefined)
			.map((block) => ({ id: Number(block.id), event: block.event ?? 'message', data: JSON.parse(block.data!) as Record<string, unknown> }));
	}

	/** Waits until `count` events arrived. */
	async waitForEvents(count: number, timeoutMs = 3000): Promise<StreamEvent[]> {
		await this.#waitFor(() => this.events.length >= count, `${count} events (have ${this.events.length}: ${this.text})`, timeoutMs);
		return this.events;
	}

	/** Waits until the server ends the stream. */
	async waitForEnd(timeoutMs = 3000): Promise<void> {
		await this.#waitFor(() => this.#ended, `the end of the stream (so far: ${this.text})`, timeoutMs);
	}

	/** Waits until `predicate` holds for the text read so far. */
	async waitForText(predicate: (text: string) => boolean, timeoutMs = 3000): Promise<void> {
		await this.#waitFor(() => predicate(this.text), `text (so far: ${this.text})`, timeoutMs);
	}

	/** Disconnects, as a client that goes away. */
	async close(): Promise<void> {
		this.#controller.abort();
		await this.#done;
	}

	async #read(): Promise<void> {
		const body = this.response.body;
		if (body === null) {
			this.#ended = true;
			return;
		}

		const decoder = new TextDecoder();
		let rest = '';
		try {
			for await (const chunk of body) {
				const text = decoder.decode(chunk as Uint8Array, { stream: true });
				this.text += text;
				rest += text;
				let end: number;
				while ((end = rest.indexOf('\n\n')) !== -1) {
					this.blocks.push(parseBlock(rest.slice(0, end)));
					rest = rest.slice(end + 2);
				}

				this.#wake();
			}

			this.#ended = true;
		} catch {
			// Aborted by the test.
		} finally {
			this.#wake();
		}
	}

	#wake(): void {
		const waiters = this.#waiters;
		this.#waiters = [];
		for (const wake of waiters) wake();
	}

	async #waitFor(condition: () => boolean, what: string, timeoutMs: number): Promise<void> {
		const deadline = Date.now() + timeoutMs;
		while (!condition()) {
			const left = deadline - Date.now();
			if (left <= 0) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
			await new Promise<void>((resolve) => {
				const timer = setTimeout(resolve, Math.min(left, 50));
				this.#waiters.push(() => {
					clearTimeout(timer);
					resolve();
				});
			});
		}
	}
}

function parseBlock(text: string): StreamBlock {
	const block: Record<string, string> = {};
	for (const line of text.split('\n')) {
		if (line.startsWith(':')) {
			block.comment = line.slice(1).trim();
			continue;
		}

		const colon = line.indexOf(':');
		const field = colon === -1 ? line : line.slice(0, colon);
		const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /u, '');
		block[field] = field === 'data' && block.data !== undefined ? `${block.data}\n${value}` : value;
	}

	return block;
}
