/**
 * Cancelling a run owned elsewhere in one round trip, when the registry and the bus allow it: the
 * registry's compare-and-set publishes the bus's message from inside the same atomic step (for
 * Redis, `PUBLISH` from the update script), so the owner hears of it one round trip sooner and
 * still never before the registry says CANCELLED. Duck-typed, so that the core does not depend on
 * an adapter: `RedisRunRegistry` and `RedisCancellationBus` have the capabilities (see
 * `src/redis/cancel-publication.ts`).
 */
import type { CancelCommand, CancellationBus } from './bus.js';
import type { RunRegistry, UpdateRunOptions } from './registry.js';
import type { Run, RunPatch } from './run.js';

/**
 * Updates with a compare-and-set and, only when it applied, publishes `command`. `published` is
 * false when the bus could not encode the command (then nothing was published; the caller's own
 * `publish` reports why).
 */
export type CancelAndPublish = (
	runId: string,
	patch: RunPatch,
	options: UpdateRunOptions,
	command: CancelCommand,
) => Promise<{ readonly run: Run | undefined; readonly published: boolean }>;

interface PublishingRegistry {
	readonly client: unknown;
	updateRunAndPublish(runId: string, patch: RunPatch, options: UpdateRunOptions, publication: unknown): Promise<Run | undefined>;
}

interface PreparingBus {
	prepare(command: CancelCommand): unknown;
	sharesServerWith(client: unknown): boolean;
}

/** The one-round-trip cancel for this pair, or `undefined` when they cannot do it (then: update, then publish). */
export function cancelInOneTrip(registry: RunRegistry, bus: CancellationBus | undefined): CancelAndPublish | undefined {
	const publishing = registry as Partial<PublishingRegistry>;
	const preparing = bus as Partial<PreparingBus> | undefined;
	if (
		typeof publishing.updateRunAndPublish !== 'function' ||
		typeof preparing?.prepare !== 'function' ||
		typeof preparing.sharesServerWith !== 'function' ||
		!preparing.sharesServerWith(publishing.client)
	) {
		return undefined;
	}

	const registryWithPublish = publishing as PublishingRegistry;
	const busWithPrepare = preparing as PreparingBus;
	return async (runId, patch, options, command) => {
		let publication: unknown;
		try {
			publication = busWithPrepare.prepare(command);
		} catch {
			return { run: await registry.updateRun(runId, patch, options), published: false };
		}

		return { run: await registryWithPublish.updateRunAndPublish(runId, patch, options, publication), published: true };
	};
}
