/**
 * Global setup of the `redis` project: starts a throwaway redis-server on a free loopback port,
 * with no persistence, provides its URL to the tests as `redisUrl`, and stops it by pid at the end.
 *
 * Without `redis-server` on PATH: under CI (`CI=true`) that is a failure; elsewhere a notice is
 * printed and `redisUrl` is null, which makes the Redis test files skip (visibly).
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

import type { TestProject } from 'vitest/node';

import { RedisServer } from '../support/redis-server.js';

declare module 'vitest' {
	export interface ProvidedContext {
		/** `redis://127.0.0.1:<port>` of the test server, or null when redis-server is not installed. */
		redisUrl: string | null;
	}
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
	const binary = await findOnPath('redis-server');
	if (binary === undefined) {
		if (process.env.CI === 'true') throw new Error('redis-server is not on PATH: CI must install it (.ci/run: ensure_apt_package redis-server)');
		const line = '!'.repeat(100);
		console.warn(`\n${line}\n!! redis-server is not on PATH: the Redis tests are SKIPPED. Install it (e.g. apt-get install redis-server) to run them.\n${line}\n`);
		project.provide('redisUrl', null);
		return async () => {};
	}

	const server = await RedisServer.started();
	project.provide('redisUrl', server.url);
	return async () => {
		await server.destroy();
	};
}

async function findOnPath(name: string): Promise<string | undefined> {
	for (const dir of (process.env.PATH ?? '').split(delimiter)) {
		if (dir === '') continue;
		const candidate = join(dir, name);
		try {
			await access(candidate, constants.X_OK);
			return candidate;
		} catch {
			// Not here.
		}
	}
	return undefined;
}
