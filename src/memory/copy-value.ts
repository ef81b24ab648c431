/**
 * Copies of user values (`parameters`, `result`, `progress`, `error`, `metadata`) going into and
 * out of the in-memory registry, so that callers never share state with what it stores.
 */

// Stored in place of every empty plain object: never handed out (reads copy), so it can be shared.
const EMPTY: Readonly<Record<string, never>> = Object.freeze({});

// The copy of a user value to store: as `cloneValue`, but empty plain objects (a run's usual
// `parameters`) all become the one shared `EMPTY`.
export function storeValue<T>(value: T): T {
	if (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
		for (const _key in value) return cloneValue(value);
		// cloneValue would copy no key either (symbol keys are not copied).
		return EMPTY as T;
	}
	return cloneValue(value);
}

// Returned by copyPlain for anything it leaves to structuredClone.
const NOT_PLAIN = Symbol('not plain');
// Deeper trees (and cycles) go to structuredClone.
const MAX_PLAIN_DEPTH = 16;

/**
 * A deep copy of `value` as `structuredClone` makes it, or `value` itself when it cannot be
 * cloned (it holds a function, say). Primitives are returned as they are.
 */
export function cloneValue<T>(value: T): T {
	if (typeof value !== 'object' || value === null) return value;
	try {
		// Plain data, the usual case, is copied by hand: an order of magnitude cheaper than structuredClone.
		const copy = copyPlain(value, 0);
		if (copy !== NOT_PLAIN) return copy as T;
		return structuredClone(value);
	} catch {
		// A getter or a Proxy trap threw, or structuredClone refused the value.
		return value;
	}
}

// Copies a tree of plain objects, dense arrays and primitives; NOT_PLAIN for anything else.
function copyPlain(value: object, depth: number): unknown {
	if (depth > MAX_PLAIN_DEPTH) return NOT_PLAIN;
	if (Array.isArray(value)) {
		if (Object.getPrototypeOf(value) !== Array.prototype) return NOT_PLAIN;
		const copy: unknown[] = new Array(value.length);
		for (let index = 0; index < value.length; index++) {
			// structuredClone keeps holes; leave sparse arrays to it.
			if (!(index in value)) return NOT_PLAIN;
			const item = copyMember(value[index], depth);
			if (item === NOT_PLAIN) return NOT_PLAIN;
			copy[index] = item;
		}
		return copy;
	}
	if (Object.getPrototypeOf(value) !== Object.prototype) return NOT_PLAIN;
	const copy: Record<string, unknown> = {};
	for (const key of Object.keys(value)) {
		// Assigning an own `__proto__` key would set the prototype instead.
		if (key === '__proto__') return NOT_PLAIN;
		const item = copyMember((value as Record<string, unknown>)[key], depth);
		if (item === NOT_PLAIN) return NOT_PLAIN;
		copy[key] = item;
	}
	return copy;
}

function copyMember(value: unknown, depth: number): unknown {
	switch (typeof value) {
		case 'object':
			return value === null ? null : copyPlain(value, depth + 1);
		case 'function':
		case 'symbol':
			return NOT_PLAIN;
		default:
			return value;
	}
}
