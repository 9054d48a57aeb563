import { describe, expect, it } from 'vitest';
import { filterCatalog, noFilter } from '../../src/lib/filter';
import type { CatalogEntry } from '../../src/lib/types';

const entry = (name: string, kind: CatalogEntry['kind'], local: boolean, tools: string[] = []): CatalogEntry => ({
  fit: { fits: true, missing: [] },
  owner: { id: local ? 'me' : 'p', name: local ? 'laptop' : 'gpu-box', local },
  workspace_id: 'w', workspace: 'vision', access: 'open', size_bytes: 1, name, kind, requires: {}, tools,
});
const all = [entry('lab', 'process', true, ['JupyterLab']), entry('serve', 'container', false), entry('sandbox', 'vm', false)];

describe('filterCatalog', () => {
  it('every word must match somewhere', () => {
    expect(filterCatalog(all, { ...noFilter(), query: 'jupyter' }).map((e) => e.name)).toEqual(['lab']);
    expect(filterCatalog(all, { ...noFilter(), query: 'gpu-box vision' }).map((e) => e.name)).toEqual(['serve', 'sandbox']);
    expect(filterCatalog(all, { ...noFilter(), query: 'gpu-box jupyter' })).toEqual([]);
  });
  it('filters by kind, owner and fit', () => {
    expect(filterCatalog(all, { ...noFilter(), kind: 'vm' }).map((e) => e.name)).toEqual(['sandbox']);
    expect(filterCatalog(all, { ...noFilter(), owner: 'local' }).map((e) => e.name)).toEqual(['lab']);
    expect(filterCatalog(all, { ...noFilter(), fits: true }, (e) => e.kind !== 'container').map((e) => e.name)).toEqual(['lab', 'sandbox']);
  });
  it('a workspace shared without environments is a files entry', () => {
    const withData = [...all, entry('datasets', null, false)];
    expect(filterCatalog(withData, { ...noFilter(), kind: 'files' }).map((e) => e.name)).toEqual(['datasets']);
    expect(filterCatalog(withData, { ...noFilter(), query: 'files' }).map((e) => e.name)).toEqual(['datasets']);
  });
  it('filters 5,000 entries quickly enough to run on every key press', () => {
    const many = Array.from({ length: 5000 }, (_, i) => entry(`env-${i}`, 'process', i % 2 === 0));
    const index = new Map();
    filterCatalog(many, { ...noFilter(), query: 'env-4' }, undefined, index);
    const t = performance.now();
    const hits = filterCatalog(many, { ...noFilter(), query: 'env-49' }, undefined, index);
    const ms = performance.now() - t;
    expect(hits.length).toBe(111); // env-49, env-490..499, env-4900..4999
    // Not a timing assertion (machines are noisy): printed for the record.
    console.log(`filtered 5000 entries in ${ms.toFixed(2)} ms`);
  });
});
