#!/usr/bin/env python3
"""Draws the app icon (a rounded indigo tile with three linked nodes) as PNGs, with no
dependencies beyond the standard library, so the icons can be rebuilt anywhere."""
import math, os, struct, sys, zlib

def render(size):
    px = bytearray()
    r = size * 0.22  # corner radius
    nodes = [(0.30, 0.34), (0.70, 0.34), (0.50, 0.70)]
    for y in range(size):
        px.append(0)  # filter: none
        for x in range(size):
            fx, fy = (x + 0.5) / size, (y + 0.5) / size
            # rounded-square coverage
            dx = max(r - x - 0.5, 0, x + 0.5 - (size - r))
            dy = max(r - y - 0.5, 0, y + 0.5 - (size - r))
            inside = max(0.0, min(1.0, r - math.hypot(dx, dy) + 0.5)) if (dx or dy) else 1.0
            # background gradient indigo -> violet
            t = fy
            c = [int(79 + (124 - 79) * t), int(70 + (58 - 70) * t), int(229 + (237 - 229) * t)]
            # links between nodes
            for (ax, ay), (bx, by) in [(nodes[0], nodes[1]), (nodes[1], nodes[2]), (nodes[2], nodes[0])]:
                vx, vy = bx - ax, by - ay
                k = max(0, min(1, ((fx - ax) * vx + (fy - ay) * vy) / (vx * vx + vy * vy)))
                d = math.hypot(fx - (ax + k * vx), fy - (ay + k * vy))
                if d < 0.025:
                    c = [230, 232, 255]
            for nx, ny in nodes:
                d = math.hypot(fx - nx, fy - ny)
                if d < 0.11:
                    c = [255, 255, 255] if d < 0.085 else [200, 205, 255]
            px += bytes(c) + bytes([int(255 * inside)])
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(px), 9)) + chunk(b"IEND", b"")

out = sys.argv[1] if len(sys.argv) > 1 else "icons"
os.makedirs(out, exist_ok=True)
for name, size in [("32x32.png", 32), ("128x128.png", 128), ("128x128@2x.png", 256), ("icon.png", 512), ("tray.png", 32)]:
    with open(os.path.join(out, name), "wb") as f:
        f.write(render(size))
