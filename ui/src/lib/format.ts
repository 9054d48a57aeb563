// How numbers read in the UI: sizes, rates, times left, ages.
import type { Requirements } from './types';

export function bytes(n: number | null | undefined): string {
  if (n == null || !Number.isFinite(n)) return '-';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function rate(bytesPerSecond: number | null | undefined): string {
  return bytesPerSecond ? `${bytes(bytesPerSecond)}/s` : '-';
}

/** Seconds left: `45 s`, `3 min 20 s`, `2 h 5 min`. */
export function eta(s: number | null | undefined): string {
  if (s == null || !Number.isFinite(s) || s < 0) return '-';
  const t = Math.round(s);
  if (t < 60) return `${t} s`;
  if (t < 3600) return `${Math.floor(t / 60)} min ${t % 60} s`;
  return `${Math.floor(t / 3600)} h ${Math.floor((t % 3600) / 60)} min`;
}

/** Time since `ms` (epoch milliseconds): `just now`, `5 min ago`, `3 h ago`, `2 d ago`. */
export function ago(ms: number | null | undefined, now = Date.now()): string {
  if (!ms) return '-';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 10) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function percent(done: number, total: number): number {
  if (!total) return done ? 100 : 0;
  return Math.min(100, Math.floor((done / total) * 100));
}

/** `1 GPU, 16 GB VRAM, 32 GB RAM, 8 CPUs`, or `-`. */
export function requirements(r: Requirements | null | undefined): string {
  if (!r) return '-';
  const p: string[] = [];
  if (r.gpus) p.push(`${r.gpus} GPU${r.gpus > 1 ? 's' : ''}`);
  if (r.vram_gb) p.push(`${r.vram_gb} GB VRAM`);
  if (r.cuda) p.push(`CUDA ${r.cuda}`);
  if (r.ram_gb) p.push(`${r.ram_gb} GB RAM`);
  if (r.cpus) p.push(`${r.cpus} CPU${r.cpus > 1 ? 's' : ''}`);
  if (r.disk_gb) p.push(`${r.disk_gb} GB disk`);
  return p.join(', ') || '-';
}
