/**
 * Counting what goes to Redis. Client side: every command an ioredis client sends (pipelined ones
 * included), by name, by wrapping `Redis.prototype.sendCommand` — BullMQ uses the same ioredis
 * copy, so its connections are counted too. Server side: `INFO commandstats` deltas, which in Redis
 * 7 count the commands scripts run (`redis.call`) as well as the EVALSHA that ran them.
 */
import { Redis } from 'ioredis';

const sent = new Map<string, number>();
let installed = false;

export function installSendCounter(): void {
	if (installed) return;
	installed = true;
	const prototype = Redis.prototype as unknown as { sendCommand: (command: { name: string }, ...rest: unknown[]) => unknown };
	const original = prototype.sendCommand;
	prototype.sendCommand = function (this: unknown, command: { name: string }, ...rest: unknown[]) {
		sent.set(command.name, (sent.get(command.name) ?? 0) + 1);
		return original.call(this, command, ...rest);
	};
}

/** A copy of the client-side counts so far. */
export function sentSnapshot(): Map<string, number> {
	return new Map(sent);
}

/** `after − before`, per command, zeros left out. */
export function diffCounts(before: ReadonlyMap<string, number>, after: ReadonlyMap<string, number>): Map<string, number> {
	const delta = new Map<string, number>();
	for (const [name, count] of after) {
		const difference = count - (before.get(name) ?? 0);
		if (difference !== 0) delta.set(name, difference);
	}
	return delta;
}

/** Calls per command from `INFO commandstats`. */
export async function commandStats(admin: Redis): Promise<Map<string, number>> {
	const text = await admin.info('commandstats');
	const stats = new Map<string, number>();
	for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) stats.set(match[1] as string, Number(match[2]));
	return stats;
}

export async function usedMemory(admin: Redis): Promise<number> {
	return Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1]);
}

export function total(counts: ReadonlyMap<string, number>): number {
	let sum = 0;
	for (const count of counts.values()) sum += count;
	return sum;
}

/** The `limit` most frequent commands, as `name ×perRun`. */
export function top(counts: ReadonlyMap<string, number>, perRuns: number, limit = 6): string {
	return [...counts]
		.sort((a, b) => b[1] - a[1])
		.slice(0, limit)
		.map(([name, count]) => `${name} ${formatPerRun(count / perRuns)}`)
		.join(', ');
}

function formatPerRun(value: number): string {
	return value >= 10 || Number.isInteger(value) ? value.toFixed(0) : value.toFixed(2);
}
