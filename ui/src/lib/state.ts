// The UI's picture of the node, and how each WebSocket message changes it. Pure: no DOM, no
// network; `live.svelte.ts` owns the connection and the fetching, tests drive `apply` directly.
import type {
  AccessRequest,
  CatalogEntry,
  CloneJob,
  Message,
  NodeInfo,
  Peer,
  Resources,
  Run,
  Workspace,
  WorkspaceSummary,
} from './types';

/** Log lines kept per run in the page (the node keeps the whole log). */
export const LOG_LINES = 5000;

export interface State {
  node: NodeInfo | null;
  workspaces: Record<string, WorkspaceSummary>;
  /** Full workspaces, as the detail view and events have them. */
  details: Record<string, Workspace>;
  peers: Record<string, Peer>;
  catalog: CatalogEntry[];
  clones: Record<string, CloneJob>;
  runs: Record<string, Run>;
  logs: Record<string, string[]>;
  resources: Resources | null;
  /** Peers waiting for the owner's yes to clone a share with `access = "approve"`. */
  access: Record<string, AccessRequest>;
}

export function emptyState(): State {
  return { node: null, workspaces: {}, details: {}, peers: {}, catalog: [], clones: {}, runs: {}, logs: {}, resources: null, access: {} };
}

/** What the page should do after a message, besides showing the new state. */
export type Effect =
  | { refetch: 'catalog' | 'all' }
  | { notify: { level: 'ok' | 'error' | 'warn'; text: string; detail?: string | null } };

export function summary(ws: Workspace): WorkspaceSummary {
  const m = ws.manifest;
  return {
    id: ws.id,
    path: ws.path,
    name: ws.name,
    description: m?.workspace.description ?? null,
    shared: m?.sharing.enabled ?? false,
    projects: m?.projects.map((p) => p.name) ?? [],
    environments: m?.environments.map((e) => e.name) ?? [],
    problem: ws.problem ?? null,
  };
}

export function apply(s: State, msg: Message): Effect[] {
  switch (msg.type) {
    case 'hello':
      s.node = msg.node;
      return [];
    case 'lagged':
      // Events were dropped for this client: what it shows may be stale.
      return [{ refetch: 'all' }];
    case 'workspace_added':
    case 'workspace_changed':
      s.details[msg.workspace.id] = msg.workspace;
      s.workspaces[msg.workspace.id] = summary(msg.workspace);
      return [];
    case 'workspace_removed':
      delete s.workspaces[msg.id];
      delete s.details[msg.id];
      return [];
    case 'manifest_invalid': {
      const ws = s.workspaces[msg.workspace_id];
      if (ws) ws.problem = msg.error;
      const d = s.details[msg.workspace_id];
      if (d) d.problem = msg.error;
      return [
        {
          notify: {
            level: 'warn',
            text: `${ws?.name ?? 'A workspace'}: aienv.toml has an error at line ${msg.error.line}`,
            detail: msg.error.message,
          },
        },
      ];
    }
    case 'peer_joined':
    case 'peer_updated':
      s.peers[msg.peer.id] = msg.peer;
      return [];
    case 'peer_left':
      delete s.peers[msg.peer.id];
      // Its environments leave the catalog with it.
      s.catalog = s.catalog.filter((e) => e.owner.id !== msg.peer.id);
      return [];
    case 'clone_progress':
      s.clones[msg.job.id] = msg.job;
      return [];
    case 'clone_done':
      s.clones[msg.job.id] = msg.job;
      return [{ notify: { level: 'ok', text: `Cloned ${msg.job.workspace_name} from ${msg.job.peer_name}`, detail: msg.job.target } }];
    case 'clone_failed': {
      s.clones[msg.job.id] = msg.job;
      const cancelled = msg.job.state === 'cancelled';
      return [
        {
          notify: {
            level: cancelled ? 'warn' : 'error',
            text: `${cancelled ? 'Cancelled' : 'Clone failed'}: ${msg.job.workspace_name} from ${msg.job.peer_name}`,
            detail: msg.job.error,
          },
        },
      ];
    }
    case 'run_changed': {
      const before = s.runs[msg.run.id];
      s.runs[msg.run.id] = msg.run;
      if (msg.run.state === 'failed' && before?.state !== 'failed') {
        return [{ notify: { level: 'error', text: `${msg.run.workspace_name}/${msg.run.environment} failed`, detail: msg.run.error } }];
      }
      return [];
    }
    case 'run_log': {
      const lines = (s.logs[msg.log.run_id] ??= []);
      lines.push(...msg.log.lines);
      if (lines.length > LOG_LINES) lines.splice(0, lines.length - LOG_LINES);
      return [];
    }
    case 'catalog_changed':
      return [{ refetch: 'catalog' }];
    case 'access_requested':
      s.access[msg.request.id] = msg.request;
      return [];
    case 'access_decided':
      delete s.access[msg.request.id];
      if (msg.timed_out) {
        const who = msg.request.peer_name ?? msg.request.from;
        return [{ notify: { level: 'warn', text: `Nobody answered ${who}'s request for ${msg.request.workspace}`, detail: 'It was refused; the peer can ask again.' } }];
      }
      return [];
  }
  return [];
}

/** Newest first. */
export function byStart<T extends { started_ms: number }>(items: Record<string, T>): T[] {
  return Object.values(items).sort((a, b) => b.started_ms - a.started_ms);
}
