// The one way the UI talks to the node: JSON over HTTP with the API key (when the node wants
// one), and the same error shape for every failure.
import type { ManifestError } from './types';

const KEY = 'aienv.api-key';

export function apiKey(): string | null {
  try {
    return localStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function setApiKey(key: string | null) {
  try {
    if (key) localStorage.setItem(KEY, key);
    else localStorage.removeItem(KEY);
  } catch {
    /* storage disabled: the key lasts for this page only */
  }
}

/** A failed request: `code` is stable (switch on it), `message` is for people. */
export class ApiFailure extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public location?: ManifestError | null,
  ) {
    super(message);
  }
}

export async function request<T>(method: string, path: string, body?: unknown, text = false): Promise<T> {
  const headers: Record<string, string> = {};
  const key = apiKey();
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined && !text) headers['content-type'] = 'application/json';
  if (text) headers['content-type'] = 'application/toml';
  let r: Response;
  try {
    r = await fetch('/api/v1' + path, {
      method,
      headers,
      body: body === undefined ? undefined : text ? String(body) : JSON.stringify(body),
    });
  } catch {
    throw new ApiFailure(0, 'unreachable', 'The node does not answer. Is it running?');
  }
  const type = r.headers.get('content-type') ?? '';
  const data = type.includes('json') ? await r.json().catch(() => null) : await r.text();
  if (!r.ok) {
    const e = data && typeof data === 'object' ? (data as { error?: Record<string, unknown> }).error : null;
    throw new ApiFailure(
      r.status,
      String(e?.code ?? 'http_' + r.status),
      String(e?.message ?? `${method} ${path} failed with HTTP ${r.status}`),
      (e?.location as ManifestError | undefined) ?? null,
    );
  }
  return data as T;
}

export const get = <T>(path: string) => request<T>('GET', path);
export const post = <T>(path: string, body?: unknown) => request<T>('POST', path, body ?? {});
export const patch = <T>(path: string, body: unknown) => request<T>('PATCH', path, body);
export const del = <T>(path: string) => request<T>('DELETE', path);
export const put = <T>(path: string, body: unknown) => request<T>('PUT', path, body);
export const putText = <T>(path: string, text: string) => request<T>('PUT', path, text, true);

/** `a/b` -> `a%2Fb`: names in paths are single segments. */
export const seg = (s: string) => encodeURIComponent(s);

export function eventsUrl(): string {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const key = apiKey();
  return `${proto}//${location.host}/api/v1/events${key ? `?access_token=${encodeURIComponent(key)}` : ''}`;
}
