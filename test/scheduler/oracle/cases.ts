/**
 * Case table for the Quartz oracle (see generate.sh). Prints tab-separated
 * lines that QuartzOracle.java reads:
 *   F <expression> <time zone> <start instant> <count>
 *   V <expression>
 * Not part of the test suite.
 */

const lines: string[] = [];
const fire = (expr: string, zone: string, from: string, count: number): void => {
  lines.push(['F', expr, zone, from, String(count)].join('\t'));
};

const ZONES = [
  'UTC',
  'America/New_York',
  'Europe/London',
  'Europe/Berlin',
  'Australia/Sydney',
  'Asia/Kolkata',
  'Pacific/Chatham',
];

/** General expressions, evaluated in every zone from a few ordinary instants. */
const GENERAL = [
  '0 0 12 * * ?',
  '0 15 10 ? * *',
  '0 */5 * * * ?',
  '*/20 * * * * ?',
  '15,45 10 8 * * ?',
  '0 0/15 9-17 ? * MON-FRI',
  '0 0 0 * * ?',
  '0 0 0 1 * ?',
  '0 30 2 * * ?',
  '0 0 22-2 * * ?',
  '0 0 12 L * ?',
  '0 0 12 L-3 * ?',
  '0 0 9 LW * ?',
  '0 0 9 L-2W * ?',
  '0 0 9 15W * ?',
  '0 0 9 1W * ?',
  '0 0 9 31W * ?',
  '0 0 10 ? * 6#3',
  '0 0 10 ? * 2#5',
  '0 0 10 ? * SAT#5',
  '0 0 10 ? * 1#1',
  '0 0 10 ? * 5L',
  '0 0 10 ? * MONL',
  '0 0 10 ? * L',
  '0 0 10 ? * FRI-MON',
  '0 0 10 ? * 2-6/2',
  '0 0 10 ? * */3',
  '0 0 12 ? * 1,4,7',
  '0 0 12 ? JAN,JUL MON',
  '0 0 12 1 NOV-FEB ?',
  '0 0 12 30-2 * ?',
  '0 0 12 1/10 * ?',
  '0 5-55/10 * * * ?',
  '50-10/5 0 0 * * ?',
  '0 0 0 29 2 ?',
  '0 0 0 29 2 ? 2096',
  '0 0 0 1 1 ? 2030-2035',
  '0 0 0 1 1 ? 2020',
  '0 0 0 31 4 ?',
  '0 0 0 30 2 ?',
  '0 0 0 L-30 * ?',
  '0 11 11 11 11 ? 2027/5',
  '0 0 12 ? 2/3 1#1',
  '0 0 8 ? * sun',
  '0 0 8 ? jan-mar wed',
  '0 0 0 ? * 6L 2025',
  '0 0 6 31 * ?',
  '59 59 23 L 12 ?',
];

const GENERAL_STARTS = [
  '2024-01-15T10:17:33Z',
  '2023-06-30T23:59:59Z',
  '2025-12-31T23:00:00Z',
  '2024-02-28T12:00:00Z',
];

for (const expr of GENERAL) {
  for (const zone of ZONES) {
    for (const from of GENERAL_STARTS) fire(expr, zone, from, 6);
  }
}

/** Expressions that are sensitive to daylight-saving transitions. */
const DST_EXPRESSIONS = [
  '0 30 2 * * ?',
  '0 0 2 * * ?',
  '0 30 1 * * ?',
  '0 0 1 * * ?',
  '0 0 3 * * ?',
  '0 30 * * * ?',
  '0 0 * * * ?',
  '0 */15 * * * ?',
  '0 * * * * ?',
  '0 45 2 * * ?',
  '0 0 0 * * ?',
  '0 59 23 * * ?',
  '0 0,30 0-4 * * ?',
  '0 0 2 ? * SUN',
  '0 0 2 ? * 1#1',
  '0 30 2 L * ?',
  '0 15 2 1W * ?',
  '30 15 1-3 * * ?',
];

/**
 * 2024 transitions as UTC instants (the moment the offset changes).
 * Northern and southern hemisphere, 30- and 45-minute zones, and a midnight
 * transition (Santiago).
 */
const TRANSITIONS: Array<[string, string]> = [
  ['America/New_York', '2024-03-10T07:00:00Z'],
  ['America/New_York', '2024-11-03T06:00:00Z'],
  ['Europe/London', '2024-03-31T01:00:00Z'],
  ['Europe/London', '2024-10-27T01:00:00Z'],
  ['Europe/Berlin', '2024-03-31T01:00:00Z'],
  ['Europe/Berlin', '2024-10-27T01:00:00Z'],
  ['Australia/Sydney', '2024-10-05T16:00:00Z'],
  ['Australia/Sydney', '2024-04-06T16:00:00Z'],
  ['Australia/Lord_Howe', '2024-10-05T15:30:00Z'],
  ['Australia/Lord_Howe', '2024-04-06T15:00:00Z'],
  ['Pacific/Chatham', '2024-09-28T14:00:00Z'],
  ['Pacific/Chatham', '2024-04-06T14:00:00Z'],
  ['America/Santiago', '2024-04-07T03:00:00Z'],
  ['America/Santiago', '2024-09-08T04:00:00Z'],
];

const shift = (iso: string, minutes: number): string =>
  new Date(Date.parse(iso) + minutes * 60_000).toISOString().replace('.000Z', 'Z');

for (const [zone, at] of TRANSITIONS) {
  // Offsets (minutes) from the transition: well before, an hour before, just before, inside
  // the repeated hour (when falling back), and just after.
  for (const delta of [-3 * 60, -62, -20, -1, 0, 10, 50]) {
    for (const expr of DST_EXPRESSIONS) fire(expr, zone, shift(at, delta), 5);
  }
}

/** Accept/reject verdicts. */
const VALIDITY = [
  // valid
  '0 0 12 * * ?', '0 0 12 ? * *', '0 0 12 * * ? *', '0 0 12 * * ? 2030', '0 0 12 L * ?',
  '0 0 12 LW * ?', '0 0 12 L-3 * ?', '0 0 12 L-3W * ?', '0 0 12 15W * ?', '0 0 12 ? * 6#3',
  '0 0 12 ? * 5L', '0 0 12 ? * L', '0 0 12 ? * FRI-MON', '0 0 22-2 * * ?', '0 0 12 ? jan-mar mon-fri',
  '0 0 12 ? * fri#2', '0 0 12 ? * FRIL', '*/59 * * * * ?', '0 0 0/23 * * ?', '0 0 0 1/31 * ?',
  '0 0 0 1 */12 ?', '0 0 0 ? * */7', '0 0 0 1 1 ? 1970', '0 0 0 1 1 ? 2099', '0 0 0 L-30 * ?',
  '0 0 0 1 JAN,mar,DEC ?',
  // wrong field count
  '', '0 0 12 * *', '* * * *', '0 0 12 * * ? 2030 extra',
  // out of range
  '60 * * * * ?', '0 60 * * * ?', '0 0 24 * * ?', '0 0 12 32 * ?', '0 0 12 0 * ?', '0 0 12 * 13 ?',
  '0 0 12 * 0 ?', '0 0 12 ? * 8', '0 0 12 ? * 0', '0 0 12 ? * 1-8', '0 0 12 1-32 * ?', '0 0-60 * * * ?',
  '0 0 12 * * ? 1969', '0 0 12 * * ? 2100', '0 0 12 * * ? 2040-2030',
  // ? misuse
  '0 0 12 ? * ?', '? 0 12 * * ?', '0 ? 12 * * ?', '0 0 12 * ? ?',
  // both day fields
  '0 0 12 * * *', '0 0 12 1 * MON', '0 0 12 * * MON',
  // steps
  '0/0 * * * * ?', '*/0 * * * * ?', '*/-1 * * * * ?', '0/60 * * * * ?', '0 0 0/24 * * ?', '0 0 0 1/32 * ?',
  '0 0 0 1 1/13 ?', '0 0 0 ? * 1/8', '0 0-59/90 * * * ?', '0/ * * * * ?', '*/ * * * * ?', '0/5x * * * * ?',
  // names
  '0 0 12 ? * FOO', '0 0 12 ? FOO *', '0 0 12 ? * MONDAY', '0 0 12 MON * ?', '0 0 12 ? JAN *',
  '0 0 12 ? * MON-FRI/2', '0 0 12 ? JAN-DEC/3 *', '0 0 12 ? * 1-FRI', '0 0 12 ? * MON-5', 'JAN 0 12 * * ?',
  // # and L and W
  '0 0 12 ? * 6#6', '0 0 12 ? * 6#0', '0 0 12 ? * 6#', '0 0 12 ? * 8#1', '0 0 12 ? * 6#3,2#1',
  '0 0 12 ? * 6#3,2', '0 0 12 ? * 5L,3', '0 0 12 ? * 8L', '0 0 12 L,5 * ?', '0 0 12 L-31 * ?',
  '0 0 12 L- * ?', '0 0 12 1-5W * ?', '0 0 12 32W * ?', '0 0 12 0W * ?', '0 0 12 15W,20 * ?',
  '0 0 12 W * ?', '0 0 L * * ?', '0 0 12 * 5L ?', '0 0 12 5#1 * ?',
  // garbage
  '0 0 $ * * ?', '0 0 12 * * ?x', '0 0 1$ * * ?', '0 0 12 * * ?? ', 'a b c d e f', '0 0 12 * * ? 20x0',
  '0 0 12 1,,2 * ?', '0 0 12 - * ?', '0 0 5- * * ?', '0 0 -5 * * ?',
];
for (const expr of VALIDITY) lines.push(['V', expr].join('\t'));

process.stdout.write(lines.join('\n') + '\n');
