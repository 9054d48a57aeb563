import { describe, expect, it } from 'vitest';
import { apply, emptyState, LOG_LINES, summary } from '../../src/lib/state';
import type { CatalogEntry, CloneJob, Message, Peer, Run, Workspace } from '../../src/lib/types';

const ws = (over: Partial<Workspace> = {}): Workspace => ({
  id: 'w1',
  name: 'llm',
  path: '/data/llm',
  problem: null,
  manifest: {
    workspace: { name: 'llm', description: 'fine-tuning' },
    sharing: { enabled: true, access: 'token' },
    projects: [{ name: 'trainer' }],
    environments: [{ name: 'lab', kind: 'process' }],
  },
  ...over,
});
const peer = (id: string): Peer => ({
  id, name: id, address: '127.0.0.1', port: 1, scheme: 'http', url: 'http://127.0.0.1:1', version: '0.1.0',
  shared: 1, rev: 'r', via: 'multicast', since_ms: 1,
});
const job = (state: CloneJob['state'], error: string | null = null): CloneJob => ({
  id: 'c1', peer_id: 'p', peer_name: 'gpu-box', workspace_id: 'w', workspace_name: 'llm', target: '/t', pull: false,
  state, error, result_workspace_id: null, started_ms: 1, finished_ms: null,
  progress: { bytes_total: 100, bytes_done: 50, files_total: 2, files_done: 1, bytes_sent: 50, rate: 10, eta_s: 5 },
});
const run = (state: Run['state']): Run => ({
  id: 'r1', workspace_id: 'w1', workspace_name: 'llm', environment: 'lab', kind: 'process', state, tools: [],
  error: state === 'failed' ? 'JupyterLab did not become ready' : null, handle: { backend: 'none' }, log: '/l', started_ms: 1,
});

describe('apply', () => {
  it('keeps workspaces, their summaries and their problems current', () => {
    const s = emptyState();
    apply(s, { type: 'workspace_added', workspace: ws() });
    expect(s.workspaces.w1).toMatchObject({ name: 'llm', shared: true, environments: ['lab'], projects: ['trainer'] });
    const effects = apply(s, {
      type: 'manifest_invalid', workspace_id: 'w1',
      error: { file: '/data/llm/aienv.toml', line: 7, column: 3, message: 'unknown field `imgae`' },
    });
    expect(s.workspaces.w1.problem?.line).toBe(7);
    expect(effects[0]).toMatchObject({ notify: { level: 'warn', text: 'llm: aienv.toml has an error at line 7' } });
    apply(s, { type: 'workspace_changed', workspace: ws({ name: 'llm2' }), cause: 'file' });
    expect(s.workspaces.w1.problem).toBeNull();
    expect(s.workspaces.w1.name).toBe('llm2');
    apply(s, { type: 'workspace_removed', id: 'w1', name: 'llm2' });
    expect(s.workspaces).toEqual({});
  });

  it('drops a peer and its catalog entries when it leaves', () => {
    const s = emptyState();
    apply(s, { type: 'peer_joined', peer: peer('a') });
    apply(s, { type: 'peer_joined', peer: peer('b') });
    s.catalog = [{ owner: { id: 'a' } }, { owner: { id: 'b' } }] as CatalogEntry[];
    apply(s, { type: 'peer_left', peer: peer('a'), reason: 'expired' });
    expect(Object.keys(s.peers)).toEqual(['b']);
    expect(s.catalog.map((e) => e.owner.id)).toEqual(['b']);
  });

  it('tells the user when a clone ends, and why it failed', () => {
    const s = emptyState();
    expect(apply(s, { type: 'clone_progress', job: job('running') })).toEqual([]);
    const [done] = apply(s, { type: 'clone_done', job: job('done') });
    expect(done).toMatchObject({ notify: { level: 'ok', text: 'Cloned llm from gpu-box' } });
    const [failed] = apply(s, { type: 'clone_failed', job: job('failed', 'gpu-box stopped answering; clone again to resume') });
    expect(failed).toMatchObject({ notify: { level: 'error', detail: 'gpu-box stopped answering; clone again to resume' } });
    const [cancelled] = apply(s, { type: 'clone_failed', job: job('cancelled') });
    expect(cancelled).toMatchObject({ notify: { level: 'warn' } });
  });

  it('announces a failed run once', () => {
    const s = emptyState();
    apply(s, { type: 'run_changed', run: run('starting') });
    expect(apply(s, { type: 'run_changed', run: run('failed') })).toHaveLength(1);
    expect(apply(s, { type: 'run_changed', run: run('failed') })).toHaveLength(0);
  });

  it('keeps the newest log lines of a run, bounded', () => {
    const s = emptyState();
    apply(s, { type: 'run_log', log: { run_id: 'r1', lines: Array.from({ length: LOG_LINES }, (_, i) => `a${i}`) } });
    apply(s, { type: 'run_log', log: { run_id: 'r1', lines: ['last'] } });
    expect(s.logs.r1).toHaveLength(LOG_LINES);
    expect(s.logs.r1.at(-1)).toBe('last');
    expect(s.logs.r1[0]).toBe('a1');
  });

  it('shows access requests until they are answered, and says when one timed out', () => {
    const s = emptyState();
    const request = {
      id: 'r1', workspace_id: 'w1', workspace: 'private', peer_id: 'p1', peer_name: 'laptop',
      from: '10.0.0.7:5000', requested_ms: 1, expires_ms: 120_001,
    };
    expect(apply(s, { type: 'access_requested', request } as Message)).toEqual([]);
    expect(Object.keys(s.access)).toEqual(['r1']);
    expect(apply(s, { type: 'access_decided', request, approved: true, timed_out: false } as Message)).toEqual([]);
    expect(s.access).toEqual({});
    apply(s, { type: 'access_requested', request } as Message);
    const effects = apply(s, { type: 'access_decided', request, approved: false, timed_out: true } as Message);
    expect(s.access).toEqual({});
    expect(effects).toHaveLength(1);
    expect(JSON.stringify(effects[0])).toContain("Nobody answered laptop's request for private");
  });

  it('asks for a refetch when events were missed or the catalog moved', () => {
    const s = emptyState();
    expect(apply(s, { type: 'lagged', missed: 3 } as Message)).toEqual([{ refetch: 'all' }]);
    expect(apply(s, { type: 'catalog_changed', owner_id: 'a', owner_name: 'a', local: false })).toEqual([{ refetch: 'catalog' }]);
  });

  it('summarises a workspace without a valid manifest', () => {
    expect(summary(ws({ manifest: null }))).toMatchObject({ shared: false, environments: [], projects: [] });
  });
});
