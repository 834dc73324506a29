"""SVG bar chart for Benchmarks/compare/report.py: for each peer at 1 and 16 writers, the peer's ops/s
next to ours, on a log scale. Standard library only; the SVG is self-contained."""

import math
from xml.sax.saxutils import escape

COLORS = {"peer": "#9e9e9e", "commit": "#1f77b4", "kv": "#74add1", "2pc": "#08519c"}
LEGEND = [("peer", "peer"), ("commit", "ours: log commit"), ("kv", "ours: KV 1-put transaction"), ("2pc", "ours: 2PC, 2 RMs")]


def _axis(v):
    if v >= 1e6:
        return f"{v / 1e6:g}M"
    if v >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def _short(v):
    if v >= 1e6:
        return f"{v / 1e6:.1f}M"
    if v >= 1e3:
        return f"{v / 1e3:.1f}k"
    return f"{v:.0f}"


def write_svg(path, rows, title):
    """rows: the durable-write rows of report.py (peer, peerKey, n, peerOps, oursKey, oursOps)."""
    groups = []  # (label, n, [(kind, value)])
    for r in rows:
        if not groups or groups[-1][0] != r["peer"] or groups[-1][1] != r["n"]:
            groups.append((r["peer"], r["n"], [("peer", r["peerOps"])]))
        groups[-1][2].append((r["oursKey"], r["oursOps"]))
    values = [v for _, _, bars in groups for _, v in bars if v]
    if not values:
        values = [1000]
    lo = 10 ** math.floor(math.log10(max(1, min(values))))
    hi = 10 ** math.ceil(math.log10(max(values) * 1.05))
    bar, gap, group_gap = 20, 3, 26
    left, top, plot_h, bottom = 64, 56, 300, 70
    widths = [len(bars) * (bar + gap) - gap for _, _, bars in groups]
    width = left + sum(widths) + group_gap * (len(groups) + 1) + 20
    height = top + plot_h + bottom

    def y(v):
        return top + plot_h - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           'font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="20" font-size="13" font-weight="bold">{escape(title)}</text>']
    # Legend.
    lx = left
    for kind, label in LEGEND:
        out.append(f'<rect x="{lx}" y="30" width="12" height="12" fill="{COLORS[kind]}"/>')
        out.append(f'<text x="{lx + 16}" y="40">{escape(label)}</text>')
        lx += 30 + 7 * len(label)
    # Grid and axis (decades).
    v = lo
    while v <= hi * 1.0001:
        yy = y(v)
        out.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{width - 10}" y2="{yy:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{_axis(v)}</text>')
        v *= 10
    out.append(f'<text x="14" y="{top + plot_h / 2}" transform="rotate(-90 14 {top + plot_h / 2})" text-anchor="middle">ops/s</text>')
    # Bars.
    x = left + group_gap
    for (label, n, bars), w in zip(groups, widths):
        bx = x
        for kind, value in bars:
            if value:
                yy = y(max(value, lo))
                out.append(f'<rect x="{bx}" y="{yy:.1f}" width="{bar}" height="{top + plot_h - yy:.1f}" fill="{COLORS.get(kind, "#444")}">'
                           f'<title>{escape(label)} {n}: {escape(kind)} {value:.0f} ops/s</title></rect>')
                out.append(f'<text x="{bx + bar / 2}" y="{yy - 3:.1f}" text-anchor="middle" font-size="9">{_short(value)}</text>')
            else:
                out.append(f'<text x="{bx + bar / 2}" y="{top + plot_h - 3}" text-anchor="middle" font-size="9">n/a</text>')
            bx += bar + gap
        cx = x + w / 2
        out.append(f'<text x="{cx}" y="{top + plot_h + 16}" text-anchor="middle">{escape(label.replace("PostgreSQL", "PG"))}</text>')
        out.append(f'<text x="{cx}" y="{top + plot_h + 30}" text-anchor="middle">{n} writer{"s" if n > 1 else ""}</text>')
        x += w + group_gap
    out.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" stroke="#333"/>')
    out.append(f'<text x="{left}" y="{height - 12}" font-size="10">PG = PostgreSQL 15; ours at the same writer count '
               'and record size (100 B); every bar measured in the same run</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
