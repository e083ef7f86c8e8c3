#!/usr/bin/env python3
"""Plot the soak's samples (CSV: t_secs,rss_kib,open_fds,db_bytes) as a hand-written SVG:
three stacked panels sharing the time axis. Standard library only.

Usage: soak_plot.py SAMPLES.csv OUT.svg [TITLE]
"""
import csv
import sys

W, PANEL_H, LEFT, RIGHT, TOP, GAP = 760, 150, 80, 20, 40, 40
SERIES = [
    ("rss_kib", "RSS (MiB)", 1 / 1024, "#1f77b4"),
    ("open_fds", "open files", 1, "#2ca02c"),
    ("db_bytes", "database + WAL (MiB)", 1 / (1024 * 1024), "#d62728"),
]


def main() -> None:
    src, out = sys.argv[1], sys.argv[2]
    title = sys.argv[3] if len(sys.argv) > 3 else "tether soak"
    with open(src, newline="") as f:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    if not rows:
        sys.exit(f"{src}: no samples")
    t_max = max(r["t_secs"] for r in rows) or 1.0
    height = TOP + len(SERIES) * (PANEL_H + GAP)
    plot_w = W - LEFT - RIGHT
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" '
        f'viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{height}" fill="white"/>',
        f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">{title}</text>',
    ]
    for i, (key, label, scale, color) in enumerate(SERIES):
        y0 = TOP + i * (PANEL_H + GAP)
        values = [r[key] * scale for r in rows]
        v_max = max(values) * 1.1 or 1.0
        parts.append(
            f'<rect x="{LEFT}" y="{y0}" width="{plot_w}" height="{PANEL_H}" '
            f'fill="none" stroke="#999"/>'
        )
        for frac in (0, 0.5, 1):
            y = y0 + PANEL_H * (1 - frac)
            parts.append(
                f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                f"{v_max * frac:.1f}</text>"
            )
        parts.append(
            f'<text x="14" y="{y0 + PANEL_H / 2}" transform="rotate(-90 14 {y0 + PANEL_H / 2})" '
            f'text-anchor="middle">{label}</text>'
        )
        points = " ".join(
            f"{LEFT + plot_w * r['t_secs'] / t_max:.1f},"
            f"{y0 + PANEL_H * (1 - v / v_max):.1f}"
            for r, v in zip(rows, values)
        )
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="1.5"/>'
        )
        for frac in (0, 0.25, 0.5, 0.75, 1):
            x = LEFT + plot_w * frac
            parts.append(
                f'<text x="{x:.1f}" y="{y0 + PANEL_H + 14}" text-anchor="middle">'
                f"{t_max * frac:.0f} s</text>"
            )
    parts.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
