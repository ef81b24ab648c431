/**
 * A manager's background work beside its runs: the retention sweep, the reconcile with the
 * registry, the owner lease (heartbeats and reaps of orphaned runs) and the subscription to the
 * cancellation bus. Each is at most one call in flight, so that a slow registry never piles them
 * up, and every timer is unref'd: none of it keeps the host alive.
 */
import type { CancelCommand, CancellationBus, Unsubscribe } from './bus.js';
import { RunledgerError, asRunledgerError } from './errors.js';
import type { ResolvedOptions } from './options.js';
import type { RunRegistry } from './registry.js';

/** What the housekeeping needs of its manager. */
export interface HousekeepingHost {
	/** Whether the manager is shutting down: a failed subscription is then not tried again. */
	isClosing(): boolean;
	/** Ids of the runs to compare with the registry: active here, and written there. */
	reconcilableRunIds(): string[];
	/** Whether the manager holds run `runId`. */
	holds(runId: string): boolean;
	/** Reads the stored state of these runs and lets it win where it has ended (or lost) them. */
	adoptStoredStates(runIds: string[]): Promise<void>;
	/** A cancel published on the bus by any instance. */
	onCancelCommand(command: CancelCommand): void;
	report(error: RunledgerError, message: string): void;
}

export class Housekeeping {
	readonly #registry: RunRegistry;
	readonly #options: ResolvedOptions;
	readonly #host: HousekeepingHost;
	// Sweep, reconcile, heartbeat and reap intervals: all unref'd, all cleared by stop().
	readonly #timers: NodeJS.Timeout[] = [];
	// One of each in flight at most.
	#sweeping = false;
	#reconciling = false;
	#beating = false;
	#reaping = false;
	// When the last heartbeat that landed was sent (performance.now()): the lease runs from about then.
	#leaseRenewedAt = Number.NEGATIVE_INFINITY;
	// The next attempt to subscribe after a failed one; at most one is pending.
	#resubscribeTimer: NodeJS.Timeout | undefined;
	// Resolves the bus subscription's unsubscribe (undefined when subscribing failed).
	#subscription: Promise<Unsubscribe | undefined> | undefined;

	/** Starts every part the options ask for. */
	constructor(registry: RunRegistry, options: ResolvedOptions, host: HousekeepingHost) {
		this.#registry = registry;
		this.#options = options;
		this.#host = host;
		const { retention, bus, reconcileIntervalMs, ownerLease, instanceId } = options;
		if (retention !== undefined) {
			this.#timers.push(setInterval(() => void this.#sweep(retention.maxAgeMs), retention.sweepIntervalMs).unref());
		}

		if (bus !== undefined) this.#subscribe(bus, 0);

		if (reconcileIntervalMs > 0) {
			this.#timers.push(setInterval(() => void this.#reconcile(), reconcileIntervalMs).unref());
		}

		if (ownerLease !== undefined) {
			const leaseOwner = instanceId!;
			void this.#beat(leaseOwner, ownerLease.ttlMs);
			this.#timers.push(
				setInterval(() => void this.#beat(leaseOwner, ownerLease.ttlMs), ownerLease.heartbeatIntervalMs).unref(),
				setInterval(() => void this.reapOrphans(), ownerLease.reapIntervalMs).unref(),
			);
		}
	}

	/**
	 * Whether the owner lease may have lapsed: no heartbeat has landed for half of it (a stalled
	 * event loop, a slow registry). False without a lease.
	 */
	leaseInDoubt(): boolean {
		const lease = this.#options.ownerLease;
		return lease !== undefined && performance.now() - this.#leaseRenewedAt > lease.ttlMs / 2;
	}

	/** Fails the runs of owners whose lease lapsed, through the registry's `reapOrphans`; resolves their ids. */
	async reapOrphans(): Promise<string[]> {
		const registry = this.#registry;
		if (typeof registry.reapOrphans !== 'function' || this.#reaping) return [];
		this.#reaping = true;
		try {
			const reaped = await registry.reapOrphans();
			// Runs of this very manager are reaped when its own lease lapsed (a long pause): it stops them.
			await this.#host.adoptStoredStates(reaped.filter((runId) => this.#host.holds(runId)));
			return reaped;
		} catch (error) {
			this.#host.report(asRunledgerError(error, 'ERR_REGISTRY'), 'Reaping orphaned runs failed');
			return [];
		} finally {
			this.#reaping = false;
		}
	}

	/**
	 * Stops every timer and any further subscribing. Resolves once the bus subscription is left and
	 * the lease released; rejects when either fails. The caller decides how long to wait.
	 */
	stop(): Promise<unknown> {
		for (const timer of this.#timers) clearInterval(timer);
		this.#timers.length = 0;
		clearTimeout(this.#resubscribeTimer);
		const subscription = this.#subscription;
		this.#subscription = undefined;
		const { ownerLease, instanceId } = this.#options;
		return Promise.all([
			subscription?.then((unsubscribe) => unsubscribe?.()),
			ownerLease === undefined ? undefined : this.#registry.releaseOwner?.(instanceId!),
		]);
	}

	// Subscribes to the bus; a failed attempt is reported and tried again with backoff until shutdown.
	#subscribe(bus: CancellationBus, attempt: number): void {
		this.#subscription = bus
			.subscribe(
				(command) => this.#host.onCancelCommand(command),
				(error) => this.#host.report(asRunledgerError(error, 'ERR_BUS'), 'Cancellation bus error'),
			)
			.catch((error: unknown) => {
				this.#host.report(asRunledgerError(error, 'ERR_BUS'), 'Could not subscribe to the cancellation bus; will try again');
				if (!this.#host.isClosing()) {
					const delay = Math.min(30_000, 500 * 2 ** attempt);
					this.#resubscribeTimer = setTimeout(() => this.#host.isClosing() || this.#subscribe(bus, attempt + 1), delay).unref();
				}

				return undefined;
			});
	}

	// Compares the manager's active runs with the registry in one batch read, so that a cancel or
	// reap whose bus message was lost still stops the run.
	async #reconcile(): Promise<void> {
		if (this.#reconciling) return;
		const runIds = this.#host.reconcilableRunIds();
		if (runIds.length === 0) return;
		this.#reconciling = true;
		try {
			await this.#host.adoptStoredStates(runIds);
		} catch (error) {
			this.#host.report(asRunledgerError(error, 'ERR_REGISTRY'), 'Reconcile with the registry failed');
		} finally {
			this.#reconciling = false;
		}
	}

	async #beat(ownerId: string, ttlMs: number): Promise<void> {
		if (this.#beating) return;
		this.#beating = true;
		try {
			const sentAt = performance.now();
			await this.#registry.heartbeat!(ownerId, ttlMs);
			this.#leaseRenewedAt = sentAt;
		} catch (error) {
			this.#host.report(asRunledgerError(error, 'ERR_REGISTRY'), 'Owner heartbeat failed');
		} finally {
			this.#beating = false;
		}
	}

	async #sweep(maxAgeMs: number): Promise<void> {
		if (this.#sweeping) return;
		this.#sweeping = true;
		try {
			const removed = await this.#registry.cleanupOldRuns(maxAgeMs);
			if (removed > 0) this.#options.logger.debug({ removed }, 'Removed old runs');
		} catch (error) {
			this.#host.report(new RunledgerError(`Retention sweep failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error, code: 'ERR_REGISTRY' }), 'Retention sweep failed');
		} finally {
			this.#sweeping = false;
		}
	}
}
