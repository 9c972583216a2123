import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ISO_DATE } from '../../src/core/dates.ts';

/** The console's date inputs check their text against DATE_PATTERN (src/server/assets/lib.js). */
const consolePattern = (() => {
  const source = readFileSync(new URL('../../src/server/assets/lib.js', import.meta.url), 'utf8');
  const m = /export const DATE_PATTERN = String\.raw`([^`]+)`/.exec(source);
  if (!m) throw new Error('DATE_PATTERN not found in lib.js');
  // As a browser compiles a pattern attribute: anchored, with the v flag.
  return new RegExp(`^(?:${m[1]})$`, 'v');
})();

describe("the console's date pattern", () => {
  it('accepts and refuses the same texts as the server', () => {
    const texts = [
      '2024-01-15', '2024-01-15T10:00', '2024-01-15t10:00z', '2024-01-15 10:00:30', '2024-01-15T10:00:30.5Z',
      '2024-01-15T10:00:00.123456789Z', '2024-01-15T10:00+02', '2024-01-15T10:00+0230', '2024-01-15T10:00-02:30',
      '2024-01-15T24:00', '2024-01-15T23:60', '2024-01-15T10:00:61', '2024-01-15Z', '2024-01-15+02:00', '2024-1-15',
      '2024-01-15T10', '2024-01-15T10:00:00.1234567890Z', '15/01/2024', 'yesterday', '2024-01-15T10:00:00Zjunk',
    ];
    const differ = texts.filter((t) => consolePattern.test(t) !== ISO_DATE.test(t));
    expect(differ).toEqual([]);
    // Not vacuous: both accept some and refuse some.
    expect(texts.filter((t) => ISO_DATE.test(t)).length).toBe(9);
  });
});
