// Searching and filtering the catalog: every word must match somewhere (name, workspace, owner,
// description, tools, kind); filters narrow by kind, owner and whether it fits this machine.
import type { CatalogEntry } from './types';

export interface CatalogFilter {
  query: string;
  /** `files`: workspaces shared without environments. */
  kind: '' | 'process' | 'container' | 'vm' | 'files';
  owner: '' | 'local' | 'remote';
  fits: boolean;
}

/** An entry's kind, `files` for a workspace shared without environments. */
export const kindOf = (e: CatalogEntry): string => e.kind ?? 'files';

export const noFilter = (): CatalogFilter => ({ query: '', kind: '', owner: '', fits: false });

/** The text an entry is searched in, lower case (computed once per entry). */
export function haystack(e: CatalogEntry): string {
  return [e.name, e.workspace, e.owner.name, e.description ?? '', e.workspace_description ?? '', kindOf(e), ...e.tools]
    .join(' ')
    .toLowerCase();
}

export function filterCatalog(
  entries: CatalogEntry[],
  f: CatalogFilter,
  fits: (e: CatalogEntry) => boolean = () => true,
  index: Map<CatalogEntry, string> = new Map(),
): CatalogEntry[] {
  const words = f.query.toLowerCase().split(/\s+/).filter(Boolean);
  return entries.filter((e) => {
    if (f.kind && kindOf(e) !== f.kind) return false;
    if (f.owner === 'local' && !e.owner.local) return false;
    if (f.owner === 'remote' && e.owner.local) return false;
    if (f.fits && !fits(e)) return false;
    if (!words.length) return true;
    let h = index.get(e);
    if (h === undefined) {
      h = haystack(e);
      index.set(e, h);
    }
    return words.every((w) => h.includes(w));
  });
}
