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

/** A cancel command as a bus would publish it: `PUBLISH channel message`. */
export interface CancelPublication {
	readonly channel: string;
	readonly message: string;
}

/** A bus whose messages another connection to the same server may publish for it. */
export interface CancelPreparingBus<Client = unknown> {
	/**
	 * `command` encoded exactly as `publish` would send it (signed, when the bus signs), with the
	 * channel it would go to. Publishes nothing.
	 */
	prepare(command: CancelCommand): CancelPublication;
	/** Whether a PUBLISH on `client` reaches this bus's subscribers: `false` whenever that is not certain. */
	sharesServerWith(client: Client): boolean;
}

/** A registry that can publish a message from a compare-and-set update, in the same round trip. */
export interface CancelPublishingRegistry<Client = unknown> {
	/** The client the registry's writes go through: what {@link CancelPreparingBus.sharesServerWith} is given. */
	readonly client: Client;
	/**
	 * As `updateRun(runId, patch, options)`, and publishes `publication` only when the patch
	 * applied (never when the run is missing, its status is not `ifStatus`, or the change is illegal).
	 */
	updateRunAndPublish(runId: string, patch: RunPatch, options: UpdateRunOptions | undefined, publication: CancelPublication): Promise<Run | undefined>;
}

/** The one-round-trip cancel for this pair, or `undefined` when they cannot do it (then: update, then publish). */
export function cancelInOneTrip(registry: RunRegistry, bus: CancellationBus | undefined): CancelAndPublish | undefined {
	const publishing = registry as Partial<CancelPublishingRegistry>;
	const preparing = bus as Partial<CancelPreparingBus> | undefined;
	if (
		typeof publishing.updateRunAndPublish !== 'function' ||
		typeof preparing?.prepare !== 'function' ||
		typeof preparing.sharesServerWith !== 'function' ||
		!preparing.sharesServerWith(publishing.client)
	) {
		return undefined;
	}

	const registryWithPublish = publishing as CancelPublishingRegistry;
	const busWithPrepare = preparing as CancelPreparingBus;
	return async (runId, patch, options, command) => {
		let publication: CancelPublication;
		try {
			publication = busWithPrepare.prepare(command);
		} catch {
			return { run: await registry.updateRun(runId, patch, options), published: false };
		}

		return { run: await registryWithPublish.updateRunAndPublish(runId, patch, options, publication), published: true };
	};
}
