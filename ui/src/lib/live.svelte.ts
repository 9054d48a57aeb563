// The page's live connection to its node: one WebSocket for events, reconnecting with back-off;
// after every (re)connect the whole state is fetched again, so nothing missed while away stays
// missing. Views read `live.state`; they never fetch lists themselves.
import { ApiFailure, eventsUrl, get } from './api';
import { uiReady } from './native';
import { apply, emptyState, type Effect, type State } from './state';
import type { AccessRequest, CatalogEntry, CloneJob, Health, Message, Peer, Resources, Run, WorkspaceSummary } from './types';

export interface Toast {
  id: number;
  level: 'ok' | 'error' | 'warn';
  text: string;
  detail?: string | null;
}

class Live {
  state: State = $state(emptyState());
  connected = $state(false);
  /** Set when the node wants an API key this page does not have (or has a wrong one). */
  needsKey = $state(false);
  /** The last time the connection dropped, for "reconnecting" in the header. */
  lastError = $state<string | null>(null);
  toasts = $state<Toast[]>([]);

  #ws: WebSocket | null = null;
  #retry = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #catalogTimer: ReturnType<typeof setTimeout> | null = null;
  #toastId = 0;

  start() {
    this.#connect();
    // Fetch right away too: the first paint should not wait for the socket.
    void this.resync();
  }

  #connect() {
    if (this.#timer) clearTimeout(this.#timer);
    const ws = new WebSocket(eventsUrl());
    this.#ws = ws;
    ws.onopen = () => {
      this.connected = true;
      this.lastError = null;
      if (this.#retry > 0) void this.resync();
      this.#retry = 0;
    };
    ws.onmessage = (ev) => {
      let msg: Message;
      try {
        msg = JSON.parse(ev.data as string) as Message;
      } catch {
        return;
      }
      for (const effect of apply(this.state, msg)) this.#effect(effect);
    };
    ws.onclose = () => {
      if (this.#ws !== ws) return;
      this.connected = false;
      this.lastError = 'connection lost';
      // 250 ms, 500 ms, 1 s ... at most 5 s between tries.
      const wait = Math.min(5000, 250 * 2 ** this.#retry++);
      this.#timer = setTimeout(() => this.#connect(), wait);
    };
  }

  /** Reconnects now (after the API key changed). */
  reconnect() {
    this.#retry = 1;
    const old = this.#ws;
    this.#ws = null;
    old?.close();
    this.#connect();
  }

  #effect(e: Effect) {
    if ('refetch' in e) {
      if (e.refetch === 'all') void this.resync();
      else this.refreshCatalog();
    } else {
      this.notify(e.notify.level, e.notify.text, e.notify.detail);
    }
  }

  notify(level: Toast['level'], text: string, detail?: string | null) {
    const toast = { id: ++this.#toastId, level, text, detail };
    this.toasts = [...this.toasts.slice(-4), toast];
    setTimeout(() => this.dismiss(toast.id), level === 'error' ? 12000 : 6000);
  }

  dismiss(id: number) {
    this.toasts = this.toasts.filter((t) => t.id !== id);
  }

  /** The catalog changes in bursts (a peer's whole list): fetch once per burst. */
  refreshCatalog() {
    if (this.#catalogTimer) return;
    this.#catalogTimer = setTimeout(async () => {
      this.#catalogTimer = null;
      try {
        this.state.catalog = await get<CatalogEntry[]>('/catalog');
      } catch (e) {
        this.#failed(e);
      }
    }, 50);
  }

  async resync() {
    try {
      const [health, workspaces, peers, catalog, clones, runs, resources, access] = await Promise.all([
        get<Health>('/health'),
        get<WorkspaceSummary[]>('/workspaces'),
        get<Peer[]>('/peers'),
        get<CatalogEntry[]>('/catalog'),
        get<CloneJob[]>('/clones'),
        get<Run[]>('/runs'),
        get<Resources>('/resources'),
        get<AccessRequest[]>('/access-requests'),
      ]);
      const s = this.state;
      s.node = health.node;
      s.workspaces = Object.fromEntries(workspaces.map((w) => [w.id, w]));
      s.peers = Object.fromEntries(peers.map((p) => [p.id, p]));
      s.catalog = catalog;
      s.clones = Object.fromEntries(clones.map((c) => [c.id, c]));
      s.runs = Object.fromEntries(runs.map((r) => [r.id, r]));
      s.resources = resources;
      s.access = Object.fromEntries(access.map((r) => [r.id, r]));
      this.needsKey = false;
      uiReady();
    } catch (e) {
      this.#failed(e);
    }
  }

  #failed(e: unknown) {
    if (e instanceof ApiFailure && e.status === 401) this.needsKey = true;
    else if (e instanceof ApiFailure) this.lastError = e.message;
  }
}

export const live = new Live();
