"""The inline stylesheet and script of the HTML report (no external file, font or script)."""

from __future__ import annotations

CSS = """
body { font: 14px/1.45 system-ui, "DejaVu Sans", sans-serif; color: #1f2328; margin: 0;
       background: #f6f8fa; }
main { max-width: 1240px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 4px; }
h2 { font-size: 17px; margin: 0 0 4px; word-break: break-all; }
h3 { font-size: 15px; margin: 16px 0 4px; }
.sub { color: #59636e; margin: 0 0 12px; }
section.test { background: #fff; border: 1px solid #d1d9e0; border-radius: 8px;
               padding: 16px 20px; margin: 20px 0; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
         font-weight: 600; color: #fff; vertical-align: middle; }
.passed { background: #1a7f37; } .OVER, .failed { background: #cf222e; }
.error { background: #9a6700; } .skipped { background: #6e7781; }
table { border-collapse: collapse; background: #fff; font-size: 13px; }
th, td { padding: 3px 8px; border-bottom: 1px solid #e6e9ec; text-align: left;
         vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.sortable th { cursor: pointer; user-select: none; background: #f0f3f6;
                    position: sticky; top: 0; }
table.sortable th[aria-sort=ascending]::after { content: " \\25B2"; }
table.sortable th[aria-sort=descending]::after { content: " \\25BC"; }
table.overview { width: 100%; }
.overview td { vertical-align: middle; }
.overview td:first-child { word-break: break-all; max-width: 340px; }
.overview td:nth-child(3), .overview th { white-space: nowrap; }
.bar { display: flex; align-items: center; gap: 8px; margin: 2px 0; white-space: nowrap; }
.track { position: relative; width: 120px; height: 10px; background: #eaeef2;
         border-radius: 3px; flex: none; }
.fill { position: absolute; left: 0; top: 0; bottom: 0; border-radius: 3px; }
.fill.ok { background: #2da44e; } .fill.near { background: #d4a72c; }
.fill.over { background: #cf222e; }
.limit { position: absolute; top: -3px; bottom: -3px; width: 2px; background: #1f2328; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
figure { margin: 0; }
figure.roofline { flex: 1 1 620px; max-width: 740px; }
figure.time { flex: 1 1 400px; max-width: 520px; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { font-size: 12px; color: #59636e; }
dl.figures { display: flex; flex-wrap: wrap; gap: 4px 24px; font-size: 13px;
             margin: 4px 0 10px; }
dl.figures dt { color: #59636e; font-size: 11px; } dl.figures dd { margin: 0; }
.violation { color: #cf222e; font-weight: 600; margin: 2px 0; }
pre.err { white-space: pre-wrap; background: #fff8c5; padding: 6px 8px; font-size: 12px; }
.scroll { max-height: 560px; overflow: auto; border: 1px solid #e6e9ec; }
"""

#: Click a column header to sort by it (again to reverse). Numeric cells sort by ``data-v``.
JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("thead th").forEach(function (th, col) {
    th.title = "sort by " + th.textContent;
    th.addEventListener("click", function () {
      var up = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("thead th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", up ? "ascending" : "descending");
      var body = table.tBodies[0];
      var key = function (row) {
        var cell = row.cells[col];
        return cell.dataset.v !== undefined ? parseFloat(cell.dataset.v) : cell.textContent;
      };
      Array.from(body.rows).sort(function (a, b) {
        var x = key(a), y = key(b);
        var d = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
        return up ? d : -d;
      }).forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""
