/**
 * The lease settings of `createNightshift` and `startNode`: each left out, or given as undefined
 * (a value read from the environment, under exactOptionalPropertyTypes), takes its default.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_LEASE, withLeaseDefaults } from '../../src/cluster/node-identity.ts';
import { leaseOptions } from '../../src/operator/lease.ts';

describe('lease options', () => {
  it('an undefined setting is not given: it takes its default, as a left-out one does', () => {
    expect(withLeaseDefaults({ heartbeatMs: undefined, leaseMs: 5000, stuckAfterMs: undefined })).toEqual({ ...DEFAULT_LEASE, leaseMs: 5000 });
    expect(withLeaseDefaults({ leaseMs: 5000 })).toEqual({ ...DEFAULT_LEASE, leaseMs: 5000 });
    expect(withLeaseDefaults()).toEqual(DEFAULT_LEASE);
    expect(leaseOptions({ heartbeatMs: undefined, leaseMs: undefined, stuckAfterMs: undefined })).toEqual(DEFAULT_LEASE);
  });

  it('a bad setting given is still refused', () => {
    expect(() => leaseOptions({ heartbeatMs: 5 })).toThrow('heartbeat-ms must be a whole number of milliseconds >= 20, got 5');
  });
});
