#!/usr/bin/env python3
"""Plot the soak's samples as a hand-written SVG: stacked panels sharing the time axis.

The CSV (crates/tether-cli/tests/soak_support) has t_secs, rss_kib, open_fds, db_bytes,
main_bytes, wal_bytes, page_count, freelist_count, then rows_<table> and pages_<table> for
every table. Panels: RSS; open files; the database file, its WAL and both (MiB); page_count
and freelist_count; rows per table; pages per table (with its indexes). A panel whose columns
are missing (older CSVs have only the first four) is left out; empty cells (a read that
failed) are skipped. Standard library only.

Usage: soak_plot.py SAMPLES.csv OUT.svg [TITLE]
"""
import csv
import sys

W, PANEL_H, LEFT, RIGHT, TOP, GAP = 860, 150, 80, 170, 40, 40
MIB = 1 / (1024 * 1024)
COLORS = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#000000", "#aec7e8",
]
# (label, scale, [(column or prefix*, legend)])
PANELS = [
    ("RSS (MiB)", 1 / 1024, [("rss_kib", "RSS")]),
    ("open files", 1, [("open_fds", "open files")]),
    (
        "database (MiB)",
        MIB,
        [("db_bytes", "file + WAL"), ("main_bytes", "file"), ("wal_bytes", "WAL")],
    ),
    ("pages", 1, [("page_count", "page_count"), ("freelist_count", "freelist_count")]),
    ("rows per table", 1, [("rows_*", None)]),
    ("pages per table + indexes", 1, [("pages_*", None)]),
]


def number(cell: str):
    return float(cell) if cell not in ("", None) else None


def series_of(panel_series, columns):
    """The (column, legend) pairs of a panel that the CSV has (prefixes expanded)."""
    out = []
    for key, legend in panel_series:
        if key.endswith("*"):
            prefix = key[:-1]
            out += [(c, c[len(prefix):]) for c in columns if c.startswith(prefix)]
        elif key in columns:
            out.append((key, legend))
    return out


def main() -> None:
    src, out = sys.argv[1], sys.argv[2]
    title = sys.argv[3] if len(sys.argv) > 3 else "tether soak"
    with open(src, newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        rows = [{k: number(v) for k, v in r.items()} for r in reader]
    if not rows:
        sys.exit(f"{src}: no samples")
    panels = [(label, scale, series_of(s, columns)) for label, scale, s in PANELS]
    panels = [p for p in panels if p[2]]
    t_max = max(r["t_secs"] for r in rows) or 1.0
    height = TOP + len(panels) * (PANEL_H + GAP)
    plot_w = W - LEFT - RIGHT
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" '
        f'viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{height}" fill="white"/>',
        f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">{title}</text>',
    ]
    for i, (label, scale, series) in enumerate(panels):
        y0 = TOP + i * (PANEL_H + GAP)
        values = [
            r[key] * scale for key, _ in series for r in rows if r.get(key) is not None
        ]
        v_max = (max(values) if values else 0) * 1.1 or 1.0
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
        for j, (key, legend) in enumerate(series):
            color = COLORS[j % len(COLORS)]
            points = " ".join(
                f"{LEFT + plot_w * r['t_secs'] / t_max:.1f},"
                f"{y0 + PANEL_H * (1 - r[key] * scale / v_max):.1f}"
                for r in rows
                if r.get(key) is not None
            )
            parts.append(
                f'<polyline points="{points}" fill="none" stroke="{color}" '
                f'stroke-width="1.2"/>'
            )
            if len(series) > 1:
                ly = y0 + 10 + j * 12
                lx = LEFT + plot_w + 8
                parts.append(
                    f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 14}" y2="{ly - 4}" '
                    f'stroke="{color}" stroke-width="2"/>'
                    f'<text x="{lx + 18}" y="{ly}" font-size="10">{legend}</text>'
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
