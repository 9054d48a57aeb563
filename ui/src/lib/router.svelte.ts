// Hash routes (`#/catalog`, `#/workspaces/ID`): they work from the embedded files with no server
// routing, and survive reloads.
export type Route =
  | { view: 'peers' }
  | { view: 'catalog' }
  | { view: 'workspaces' }
  | { view: 'workspace'; id: string }
  | { view: 'clones' }
  | { view: 'runs' }
  | { view: 'run'; id: string }
  | { view: 'settings' };

export function parse(hash: string): Route {
  const [view, id] = hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  switch (view) {
    case 'peers':
    case 'catalog':
    case 'clones':
    case 'runs':
    case 'settings':
    case 'workspaces':
      if (view === 'workspaces' && id) return { view: 'workspace', id };
      if (view === 'runs' && id) return { view: 'run', id };
      return { view } as Route;
    default:
      return { view: 'catalog' };
  }
}

export const href = (...parts: string[]) => '#/' + parts.map(encodeURIComponent).join('/');

class Router {
  route = $state<Route>(parse(location.hash));
  constructor() {
    addEventListener('hashchange', () => (this.route = parse(location.hash)));
  }
  go(...parts: string[]) {
    location.hash = href(...parts);
  }
}

export const router = new Router();
