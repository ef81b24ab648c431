/**
 * `runledger/testing`: helpers for testing code built on runledger, such as the conformance
 * suite for `RunRegistry` adapters.
 */
export {
	describeRunRegistryConformance,
	type ConformanceAssertion,
	type ConformanceOptions,
	type ConformancePromiseAssertion,
	type ConformanceRunner,
} from './registry-suite.js';
export { describeCancellationBusConformance, type BusConformanceOptions } from './bus-suite.js';
