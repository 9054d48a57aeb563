// What the desktop app adds where a browser cannot: a folder picker, showing a folder in the file
// manager, opening links in the default browser. In a browser these are absent and the page
// falls back to what browsers do. The app allows exactly these commands (capabilities/desktop.json).
type Internals = { invoke: (cmd: string, args?: Record<string, unknown>) => Promise<unknown> };
const tauri = (globalThis as { __TAURI_INTERNALS__?: Internals }).__TAURI_INTERNALS__;

export const inDesktop = !!tauri;

export async function pickFolder(title?: string): Promise<string | null> {
  if (!tauri) return null;
  return ((await tauri.invoke('pick_folder', { title })) as string | null) ?? null;
}

export async function reveal(path: string): Promise<void> {
  await tauri?.invoke('reveal', { path });
}

/** Tells the app the page shows the node's data (once; the app prints its start-up time), after
 * the frame with the data has been painted. */
export function uiReady() {
  if (!tauri) return;
  requestAnimationFrame(() => requestAnimationFrame(() => void tauri.invoke('ui_ready').catch(() => {})));
}

/** In the app, links that would open a new browser window open in the default browser. */
export function openLinksInBrowser() {
  if (!tauri) return;
  document.addEventListener('click', (e) => {
    const a = (e.target as HTMLElement).closest?.('a');
    if (!a || a.target !== '_blank' || !/^https?:/.test(a.href)) return;
    e.preventDefault();
    void tauri.invoke('open_url', { url: a.href });
  }, true);
}
