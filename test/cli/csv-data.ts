/**
 * People CSVs for the import-csv example job, with bad rows of every kind at known lines, and
 * what the job must make of them.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

export type BadKind = 'id' | 'email' | 'amount' | 'columns' | 'utf8';

export interface Person {
  id: number;
  name: string;
  email: string;
  amount: string;
}

export interface CsvPlan {
  /** Valid people by id. */
  valid: Map<number, Person>;
  /** Bad rows: the 1-based line of the record's first line, and its kind. */
  bad: { line: number; kind: BadKind }[];
  /** Rows skipped while reading (wrong field count, invalid UTF-8) and while processing (validation). */
  readSkips: number;
  processSkips: number;
}

/** What the reject reason of a bad row must mention. */
export const REASON: Record<BadKind, RegExp> = {
  id: /\bid\b.*not an integer/,
  email: /email.*@/,
  amount: /amount.*not a decimal/,
  columns: /fields|columns/,
  utf8: /UTF-8/i,
};

const q = (s: string) => `"${s.replace(/"/g, '""')}"`;

/**
 * Writes a CSV of `rows` data records to `path`. `badAt(i)` (i = 1..rows) chooses the bad
 * records; every 97th valid record has a quoted name with a comma and a doubled quote, and
 * record 5 (when valid) has a quoted name spanning two lines.
 */
export async function writePeopleCsv(path: string, rows: number, badAt: (i: number) => BadKind | undefined): Promise<CsvPlan> {
  const out = createWriteStream(path);
  const plan: CsvPlan = { valid: new Map(), bad: [], readSkips: 0, processSkips: 0 };
  const parts: Buffer[] = [Buffer.from('id,name,email,amount\n')];
  let size = 0;
  let line = 2;
  const flush = async (force = false) => {
    if (!force && size < 1 << 16) return;
    if (!out.write(Buffer.concat(parts.splice(0)))) await once(out, 'drain');
    size = 0;
  };
  for (let i = 1; i <= rows; i++) {
    const kind = badAt(i);
    let record: Buffer;
    let lines = 1;
    if (kind) {
      plan.bad.push({ line, kind });
      if (kind === 'columns' || kind === 'utf8') plan.readSkips++;
      else plan.processSkips++;
      const text = {
        id: `${i}x,Bad Id ${i},bad${i}@example.com,1.00`,
        email: `${i},Bad Email ${i},bad${i}.example.com,1.00`,
        amount: `${i},Bad Amount ${i},bad${i}@example.com,twelve`,
        columns: `${i},Short Row ${i},bad${i}@example.com`,
        utf8: '',
      }[kind];
      record = kind === 'utf8'
        ? Buffer.concat([Buffer.from(`${i},Bad `), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from(` ${i},bad${i}@example.com,1.00\n`)])
        : Buffer.from(text + '\n');
    } else {
      let name = `Person ${i}`;
      if (i === 5) {
        name = `Two\nLines ${i}`;
        lines = 2;
      } else if (i % 97 === 0) name = `Doe, Jane "JD" ${i}`;
      const person: Person = { id: i, name, email: `person${i}@example.com`, amount: `${i % 1000}.${String(i % 100).padStart(2, '0')}` };
      plan.valid.set(i, person);
      const field = /[",\n]/.test(name) ? q(name) : name;
      record = Buffer.from(`${i},${field},${person.email},${person.amount}\n`);
    }
    parts.push(record);
    size += record.length;
    line += lines;
    await flush();
  }
  await flush(true);
  out.end();
  await once(out, 'finish');
  return plan;
}
