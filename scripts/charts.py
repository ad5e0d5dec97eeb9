#!/usr/bin/env python3
"""Draws the charts of docs/BENCHMARKS.md from the benchmark reports (standard library only).

Reads the Markdown that `scripts/bench.sh ratios` and `scripts/bench.sh throughput` write
(target/bench-report/ratios.md and throughput.md, or the copies in docs/bench-results/) and
writes SVG files:

- ratios-<request>.svg: library / raw driver per store and payload, for the modified request
  and load_hit (logarithmic axis: the memory store's ratios are ten times the others');
- throughput.svg: requests per second against threads, library and raw driver, one panel
  per store (compare-and-set mode, one session per thread).

Usage: scripts/charts.py RATIOS.md THROUGHPUT.md OUTPUT_DIR
"""

import math
import re
import sys
from pathlib import Path

PAYLOADS = ["200B", "2KB", "20KB"]
COLOURS = ["#4c78a8", "#f58518", "#54a24b"]
# The targets of docs/BENCHMARKS.md, drawn as dashed lines where one store has its own.
TARGETS = {
    "modified": {"redis": 1.10, "redis_cluster": 1.10, "sqlite": 1.20},
    "load_hit": {"redis": 1.2, "sqlite": 1.6},
}


def table_rows(text):
    """The cells of every Markdown table row but header and separator lines."""
    for line in text.splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        yield cells


def ratios(text):
    """{request: {store: {payload: ratio}}} from the interleaved ratio table."""
    found = {}
    # Only the ratio tables: the report's other tables (the C ABI's, at rest) have rows of
    # the same shape.
    sections = re.split(r"^# ", text, flags=re.MULTILINE)
    text = "\n".join(s for s in sections if s.startswith("Library / raw driver"))
    for cells in table_rows(text):
        if len(cells) < 6 or cells[2] not in PAYLOADS:
            continue
        match = re.search(r"([0-9.]+)×", cells[5])
        if match:
            store, request, payload = cells[0], cells[1], cells[2]
            found.setdefault(request, {}).setdefault(store, {})[payload] = float(match.group(1))
    return found


def throughput(text):
    """{store: {side: [(threads, requests/s)]}}: compare-and-set, one session per thread."""
    found, store = {}, None
    for line in text.splitlines():
        if line.startswith("## "):
            store = line[3:].strip()
        elif line.startswith("|") and store:
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if len(cells) >= 5 and cells[0] == "cas" and cells[1] == "one each":
                side = found.setdefault(store, {}).setdefault(cells[3], [])
                side.append((int(cells[2]), float(cells[4])))
    return found


def svg(width, height, body):
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">\n'
        f'<rect width="{width}" height="{height}" fill="white"/>\n' + "\n".join(body) + "\n</svg>\n"
    )


def ratio_chart(request, by_store):
    stores = [store for store in by_store if by_store[store]]
    left, top, plot_h, group_w = 60, 40, 300, 90
    width, height = left + group_w * len(stores) + 20, top + plot_h + 70
    values = [v for store in stores for v in by_store[store].values()]
    low, high = 0.5, max(2.0, max(values) * 1.2)
    scale = lambda v: top + plot_h - plot_h * math.log(v / low) / math.log(high / low)
    body = [f'<text x="{left}" y="20" font-size="14">{request}: library / raw driver '
            f'(log scale; dashed: target)</text>']
    for tick in [0.5, 1, 1.1, 1.2, 1.5, 2, 5, 10, 20, 50]:
        if tick <= high:
            y = scale(tick)
            body.append(f'<line x1="{left}" x2="{width - 20}" y1="{y:.1f}" y2="{y:.1f}" '
                        f'stroke="#ddd"/>')
            body.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}×</text>')
    for i, store in enumerate(stores):
        x0 = left + i * group_w + 10
        for j, payload in enumerate(PAYLOADS):
            value = by_store[store].get(payload)
            if value is None:
                continue
            x, y = x0 + j * 22, scale(max(value, low))
            body.append(f'<rect x="{x}" y="{y:.1f}" width="20" height="{scale(low) - y:.1f}" '
                        f'fill="{COLOURS[j]}"><title>{store} {payload}: {value:.2f}×</title></rect>')
        target = TARGETS.get(request, {}).get(store)
        if target:
            y = scale(target)
            body.append(f'<line x1="{x0 - 4}" x2="{x0 + 70}" y1="{y:.1f}" y2="{y:.1f}" '
                        f'stroke="#c00" stroke-dasharray="4 3"/>')
        body.append(f'<text x="{x0 + 33}" y="{top + plot_h + 18}" text-anchor="middle">'
                    f'{store}</text>')
    for j, payload in enumerate(PAYLOADS):
        x = left + j * 90
        body.append(f'<rect x="{x}" y="{height - 24}" width="12" height="12" '
                    f'fill="{COLOURS[j]}"/>')
        body.append(f'<text x="{x + 16}" y="{height - 14}">{payload}</text>')
    return svg(width, height, body)


def throughput_chart(by_store):
    stores = list(by_store)
    columns = 3
    panel_w, panel_h, pad = 260, 180, 50
    rows = math.ceil(len(stores) / columns)
    width, height = columns * (panel_w + pad) + pad, rows * (panel_h + pad + 20) + 60
    body = ['<text x="20" y="20" font-size="14">Throughput, modified requests (requests/s '
            'against threads; compare-and-set, one session per thread)</text>',
            '<line x1="20" x2="40" y1="38" y2="38" stroke="#4c78a8" stroke-width="2"/>'
            '<text x="44" y="42">library</text>',
            '<line x1="110" x2="130" y1="38" y2="38" stroke="#999" stroke-width="2" '
            'stroke-dasharray="4 3"/><text x="134" y="42">raw driver</text>']
    for index, store in enumerate(stores):
        sides = by_store[store]
        x0 = pad + (index % columns) * (panel_w + pad)
        y0 = 70 + (index // columns) * (panel_h + pad + 20)
        threads = sorted({t for points in sides.values() for t, _ in points})
        peak = max(v for points in sides.values() for _, v in points) * 1.1
        px = lambda t: x0 + panel_w * threads.index(t) / max(1, len(threads) - 1)
        py = lambda v: y0 + panel_h - panel_h * v / peak
        body.append(f'<text x="{x0}" y="{y0 - 6}" font-weight="bold">{store}</text>')
        body.append(f'<rect x="{x0}" y="{y0}" width="{panel_w}" height="{panel_h}" '
                    f'fill="none" stroke="#ccc"/>')
        body.append(f'<text x="{x0 - 4}" y="{y0 + 10}" text-anchor="end" font-size="10">'
                    f'{peak:,.0f}</text>')
        for t in threads:
            body.append(f'<text x="{px(t):.1f}" y="{y0 + panel_h + 14}" text-anchor="middle" '
                        f'font-size="10">{t}</text>')
        for side, style in [("raw", 'stroke="#999" stroke-dasharray="4 3"'),
                            ("library", 'stroke="#4c78a8"')]:
            points = sorted(sides.get(side, []))
            if points:
                path = " ".join(f"{px(t):.1f},{py(v):.1f}" for t, v in points)
                body.append(f'<polyline points="{path}" fill="none" stroke-width="2" {style}/>')
    return svg(width, height, body)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    ratio_text, throughput_text = (Path(arg).read_text() for arg in sys.argv[1:3])
    out = Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    found = ratios(ratio_text)
    for request in ["modified", "load_hit"]:
        if request in found:
            (out / f"ratios-{request}.svg").write_text(ratio_chart(request, found[request]))
    stores = throughput(throughput_text)
    if stores:
        (out / "throughput.svg").write_text(throughput_chart(stores))


if __name__ == "__main__":
    main()
