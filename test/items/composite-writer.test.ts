import { describe, it, expect } from 'vitest';
import { classifierWriter, compositeWriter } from '../../src/items/composite-writer.ts';
import type { ChunkContext, ItemStreamWriter } from '../../src/core/items.ts';

const chunk = {} as ChunkContext;

function recorder(name: string, log: string[]): ItemStreamWriter<number> {
  return {
    open: () => void log.push(`${name}.open`),
    write: async (items) => void log.push(`${name}.write ${items.join(',')}`),
    update: (ctx) => void log.push(`${name}.update ${Object.keys(ctx).length}`),
    afterCommit: () => void log.push(`${name}.afterCommit`),
    close: () => void log.push(`${name}.close`),
  };
}

describe('compositeWriter', () => {
  it('delegates every lifecycle call to each writer, in order', async () => {
    const log: string[] = [];
    const fn: number[][] = [];
    const writer = compositeWriter<number>(recorder('a', log), (items) => void fn.push(items), recorder('b', log));
    await writer.open?.({});
    await writer.write([1, 2], chunk);
    writer.update?.({});
    await writer.afterCommit?.({});
    await writer.close?.();
    expect(log).toEqual(['a.open', 'b.open', 'a.write 1,2', 'b.write 1,2', 'a.update 0', 'b.update 0', 'a.afterCommit', 'b.afterCommit', 'a.close', 'b.close']);
    expect(fn).toEqual([[1, 2]]);
  });

  it('closes every writer even when one fails, then reports the failure', async () => {
    const log: string[] = [];
    const failing: ItemStreamWriter<number> = { write: () => {}, close: () => Promise.reject(new Error('disk full')) };
    const writer = compositeWriter(failing, recorder('b', log));
    await expect(writer.close!()).rejects.toThrow('disk full');
    expect(log).toEqual(['b.close']);
  });
});

describe('classifierWriter', () => {
  it('routes each item to one writer, calling each writer once per chunk and only with items', async () => {
    const log: string[] = [];
    const writer = classifierWriter((n: number) => (n % 2 === 0 ? 'even' : 'odd'), { even: recorder('even', log), odd: recorder('odd', log) });
    await writer.open?.({});
    await writer.write([1, 2, 3, 5, 4], chunk);
    await writer.write([7, 9], chunk);
    await writer.write([], chunk);
    writer.update?.({});
    await writer.close?.();
    expect(log).toEqual(['even.open', 'odd.open', 'even.write 2,4', 'odd.write 1,3,5', 'odd.write 7,9', 'even.update 0', 'odd.update 0', 'even.close', 'odd.close']);
  });

  it('fails the chunk for an unknown key, before writing anything', async () => {
    const log: string[] = [];
    const writer = classifierWriter((n: number) => (n > 0 ? 'pos' : 'neg') as 'pos', { pos: recorder('pos', log) });
    await expect(writer.write([1, -1], chunk)).rejects.toThrow('classifierWriter: no writer for key "neg" (known: pos)');
    expect(log).toEqual([]);
  });
});
