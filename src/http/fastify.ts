/**
 * The Fastify plugin: serves `basePath` and everything under it with the task handler, on the
 * raw request and response of a hijacked reply. Types are structural, so that `runledger/http`
 * needs no Fastify types to compile.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import { ValidationError } from '../errors.js';
import type { BackgroundTaskManager } from '../manager.js';
import { type TaskHandler, createTaskHandler } from './handler.js';
import { type TaskHandlerOptions, resolveTaskHandlerOptions } from './options.js';

/** Options of {@link fastifyTaskPlugin}: the manager, and those of `createTaskHandler`. */
export interface FastifyTaskPluginOptions extends TaskHandlerOptions {
	readonly manager: BackgroundTaskManager;
	/**
	 * Called with the handler once it is created, e.g. to call `closeStreams()` at shutdown.
	 * @default undefined
	 */
	readonly onHandler?: (handler: TaskHandler) => void;
}

/** The part of a Fastify request the plugin uses. */
export interface FastifyRequestLike {
	readonly raw: IncomingMessage;
}

/** The part of a Fastify reply the plugin uses. */
export interface FastifyReplyLike {
	readonly raw: ServerResponse;
	hijack(): unknown;
}

/** The part of a Fastify instance the plugin uses. */
export interface FastifyInstanceLike {
	readonly prefix: string;
	readonly supportedMethods: string[];
	route(options: {
		method: string[];
		url: string;
		exposeHeadRoute: boolean;
		handler: (request: FastifyRequestLike, reply: FastifyReplyLike) => void;
	}): unknown;
	removeAllContentTypeParsers(): unknown;
	addContentTypeParser(
		contentType: string,
		parser: (request: FastifyRequestLike, payload: IncomingMessage, done: (error: Error | null, body?: unknown) => void) => void,
	): unknown;
}

/**
 * Serves the task routes in Fastify: `basePath` (default `/tasks`, under the prefix the plugin is
 * registered with) and everything below it, every method. Request bodies are never parsed: the
 * routes take none.
 *
 * @example
 * ```ts
 * await app.register(fastifyTaskPlugin, { manager, basePath: '/tasks' });
 * ```
 */
export function fastifyTaskPlugin(
	instance: FastifyInstanceLike,
	options: FastifyTaskPluginOptions,
	done: (error?: Error) => void,
): void {
	let handler: TaskHandler;
	// The base path without its trailing slash, relative to the plugin's prefix.
	let path: string;
	try {
		if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'an object', options);
		const { manager, onHandler, ...handlerOptions } = options;
		if (onHandler !== undefined && typeof onHandler !== 'function') throw new ValidationError('onHandler', 'a function', onHandler);
		// Validated as given, so that an error names the option before the prefix is added to it.
		path = resolveTaskHandlerOptions(handlerOptions).basePath;
		// The handler matches the full path, the prefix of the plugin included.
		handler = createTaskHandler(manager, { ...handlerOptions, basePath: `${instance.prefix}${path}` || '/' });
		onHandler?.(handler);
	} catch (error) {
		done(error as Error);
		return;
	}

	// The routes take no body: whatever comes is left unread (Node discards it), never refused.
	instance.removeAllContentTypeParsers();
	instance.addContentTypeParser('*', (_request, _payload, parsed) => parsed(null));

	const route = (request: FastifyRequestLike, reply: FastifyReplyLike): void => {
		reply.hijack();
		handler(request.raw, reply.raw);
	};

	for (const url of [path === '' ? '/' : path, `${path}/*`]) {
		instance.route({ method: [...instance.supportedMethods], url, exposeHeadRoute: false, handler: route });
	}

	done();
}

// Fastify runs a plugin in its own encapsulated context (its content type parsers stay in it).
Object.defineProperty(fastifyTaskPlugin, Symbol.for('fastify.display-name'), { value: 'runledger-tasks' });
