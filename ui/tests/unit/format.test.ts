import { describe, expect, it } from 'vitest';
import { ago, bytes, eta, percent, rate, requirements } from '../../src/lib/format';

describe('format', () => {
  it('sizes read like a file manager', () => {
    expect(bytes(0)).toBe('0 B');
    expect(bytes(999)).toBe('999 B');
    expect(bytes(1_630_000_000)).toBe('1.6 GB');
    expect(bytes(25_000_000)).toBe('25 MB');
    expect(bytes(undefined)).toBe('-');
    expect(rate(118_000_000)).toBe('118 MB/s');
    expect(rate(0)).toBe('-');
  });
  it('times left and ages', () => {
    expect(eta(45)).toBe('45 s');
    expect(eta(200)).toBe('3 min 20 s');
    expect(eta(7500)).toBe('2 h 5 min');
    expect(eta(null)).toBe('-');
    expect(ago(1000, 1000 + 5_000)).toBe('just now');
    expect(ago(0)).toBe('-');
    expect(ago(1000, 1000 + 300_000)).toBe('5 min ago');
  });
  it('progress never passes 100 and an empty clone is done', () => {
    expect(percent(50, 200)).toBe(25);
    expect(percent(300, 200)).toBe(100);
    expect(percent(0, 0)).toBe(0);
  });
  it('requirements in words', () => {
    expect(requirements({ gpus: 1, vram_gb: 16, ram_gb: 32 })).toBe('1 GPU, 16 GB VRAM, 32 GB RAM');
    expect(requirements({})).toBe('-');
  });
});
