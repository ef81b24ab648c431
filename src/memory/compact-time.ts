/**
 * Times stored as small integers where they can be. V8 keeps a small integer (a 32-bit one on
 * 64-bit Node) in an object's field itself, and any other number in a separate 16-byte box: the
 * four epoch-millisecond times of a stored run cost 64 bytes boxed. Stored as their distance from
 * an origin — this module's load time for a creation time, the creation time for the others — they
 * cost nothing beyond their fields while within about 24 days of it. Any other time (further away,
 * or not a whole millisecond) is stored as it is, boxed, exactly as before.
 */

/** A stored time: a distance from an origin, the time itself, or (rarely) the time wrapped. */
export type CompactTime = number | ExactTime;

// The one case left: a time that is itself a 32-bit integer but far from its origin (a test's
// `createdAt: 5`, say), which stored as is would read back as a distance.
class ExactTime {
	readonly at: number;

	constructor(at: number) {
		this.at = at;
	}
}

/** The origin of creation times: when this module was loaded (a whole millisecond). */
export const CREATION_ORIGIN: number = Date.now();

/** `time` stored relative to `origin`; {@link expandTime} with the same origin gives it back exactly. */
export function compactTime(time: number, origin: number): CompactTime {
	const distance = time - origin;
	// Object.is: -0 must not come back as 0.
	if ((distance | 0) === distance && Object.is(origin + distance, time)) return distance;
	// Not a 32-bit integer, so it cannot be mistaken for a distance on the way back.
	if ((time | 0) !== time) return time;
	return new ExactTime(time);
}

/** Whether `stored` is a distance from its origin (the common case) rather than a time kept as it is. */
export function isDistance(stored: CompactTime): stored is number {
	return typeof stored === 'number' && (stored | 0) === stored;
}

/** The time that {@link compactTime} stored as `stored` relative to `origin`. */
export function expandTime(stored: CompactTime, origin: number): number {
	if (typeof stored !== 'number') return stored.at;
	return (stored | 0) === stored ? origin + stored : stored;
}
