/** Shared by the Redis test files: the server URL from the global setup, clients, key scans. */
import { randomUUID } from 'node:crypto';

import { Redis, type RedisOptions } from 'ioredis';
import { inject } from 'vitest';

import type { Run } from '../../src/index.js';

/** The test server, or null when redis-server is not installed (the files then skip, visibly). */
export const redisUrl = inject('redisUrl');

/** A unique prefix, so that no two files or tests see each other's keys or channels. */
export const uniquePrefix = (): string => `t-${randomUUID()}`;

/** A client of the test server; the caller quits it. */
export const connect = (options: RedisOptions = {}): Redis =>
	new Redis(redisUrl as string, { maxRetriesPerRequest: 3, ...options });

/** Every key starting with `prefix:` (SCAN, no KEYS). */
export async function scanKeys(client: Redis, prefix: string): Promise<string[]> {
	const keys: string[] = [];
	let cursor = '0';
	do {
		const [next, batch] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
		keys.push(...batch);
		cursor = next;
	} while (cursor !== '0');
	return [...new Set(keys)].sort();
}

/** Every key of the whole server (SCAN). */
export async function scanAll(client: Redis): Promise<string[]> {
	const keys: string[] = [];
	let cursor = '0';
	do {
		const [next, batch] = await client.scan(cursor, 'COUNT', 1000);
		keys.push(...batch);
		cursor = next;
	} while (cursor !== '0');
	return [...new Set(keys)];
}

/** Polls `check` until it returns true, failing after `timeoutMs`. */
export async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!(await check())) {
		if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
		await new Promise((resolve) => setTimeout(resolve, 10));
	}
}

/** A fixed creation time for the runs of {@link makeRun}. */
export const T0 = 1_700_000_000_000;

let runCounter = 0;

/** `label-N`, unique within the test process. */
const uid = (label: string): string => `${label}-${++runCounter}`;

/** A valid QUEUED run with a fresh id, created at {@link T0}; `overrides` replace any field. */
export const makeRun = (overrides: Partial<Run> = {}): Run => ({
	runId: uid('run'),
	moduleId: 'mod',
	status: 'queued',
	priority: 'normal',
	parameters: { n: 1 },
	createdAt: T0,
	updatedAt: T0,
	...overrides,
});
