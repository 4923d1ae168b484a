"""The dashboard's inline stylesheet and script (constants; no user data ever enters them).

The CSS paints the SVG charts through classes (``mark keep``, ``frontier``, ``grid`` ...), so one set
of colour variables serves light mode, dark mode (``prefers-color-scheme``) and print. The script
only adds sorting and filtering to the runs table; the page is complete and readable without it.
"""

from __future__ import annotations

CSS = """
:root{--bg:#f4f5f7;--card:#fff;--text:#1c2230;--muted:#5d6677;--faint:#687082;--line:#e3e6ec;
--grid:#eceef2;--keep:#17894a;--keep-bg:#e3f4ea;--discard:#7d8797;--crash:#cc3333;--crash-bg:#fbeaea;
--accent:#2f5bd3;--warn:#a86200;--warn-bg:#fff4e0;--c1:#2f5bd3;--c2:#b4572b;--c3:#8a4fc4;--c4:#0f8f8f;
color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--bg:#0e1117;--card:#161b24;--text:#e4e8ef;--muted:#a1aabb;
--faint:#858fa1;--line:#283040;--grid:#1f2633;--keep:#41c982;--keep-bg:#15301f;--discard:#8792a6;
--crash:#ff6b6b;--crash-bg:#3a1b1f;--accent:#7aa2ff;--warn:#f0b35a;--warn-bg:#35280f;--c1:#7aa2ff;
--c2:#f08d5c;--c3:#c79bf2;--c4:#4fd1c5}}
*{box-sizing:border-box}[hidden]{display:none!important}
body{margin:0;background:var(--bg);color:var(--text);font:14px/1.5 system-ui,-apple-system,"Segoe UI",
Roboto,"Helvetica Neue",Arial,sans-serif;-webkit-text-size-adjust:100%}
main{max-width:1240px;margin:0 auto;padding:20px 20px 40px}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
h1{font-size:22px;margin:0}h2{font-size:16px;margin:0 0 10px}h3{font-size:14px;margin:14px 0 6px}
a{color:var(--accent)}
header.top{display:flex;flex-wrap:wrap;align-items:baseline;gap:6px 18px;margin-bottom:14px}
header.top .sub{color:var(--muted)}
nav.toc{display:flex;flex-wrap:wrap;gap:4px 14px;margin:0 0 16px;font-size:13px}
nav.toc a{text-decoration:none}nav.toc a:hover{text-decoration:underline}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 18px;margin:0 0 16px;
min-width:0;overflow-x:auto}
.card td{overflow-wrap:anywhere}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(520px,100%),1fr));gap:16px}
.grid2>.card{margin:0}.grid2{margin-bottom:16px}
.stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px;margin:0 0 16px}
.stat{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 14px}
.stat .k{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.stat .v{font-size:24px;font-weight:650;font-variant-numeric:tabular-nums;line-height:1.25;white-space:nowrap}
.stat.wide{grid-column:span 2}
.stat .v .glyph-svg{margin:0 1px 0 6px}.stat.wide{grid-column:span 2}
.stat .v .glyph-svg:first-child{margin-left:0}
.stat .d{color:var(--muted);font-size:12.5px}
.good{color:var(--keep)}.bad{color:var(--crash)}.muted{color:var(--muted)}
.warn{background:var(--warn-bg);color:var(--warn);border-radius:8px;padding:8px 12px;margin:0 0 16px}
.champ{display:grid;grid-template-columns:minmax(220px,auto) 1fr;gap:10px 28px;align-items:start}
.champ .big{font-size:34px;font-weight:700;font-variant-numeric:tabular-nums;color:var(--keep);line-height:1.1}
.champ .desc{font-size:15px;margin:2px 0 6px}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:8px 0 0}
dl.kv dt{color:var(--muted)}dl.kv dd{margin:0;overflow-wrap:anywhere}
.pill{display:inline-block;border-radius:999px;padding:0 8px;font-size:12px;font-weight:600;
border:1px solid var(--line);white-space:nowrap}
.p-high{background:var(--crash-bg);color:var(--crash);border-color:transparent}
.p-medium{background:var(--warn-bg);color:var(--warn);border-color:transparent}
.p-low{color:var(--muted)}
.legend{display:flex;flex-wrap:wrap;gap:4px 18px;align-items:center;color:var(--muted);font-size:13px;margin:0 0 6px}
.legend span{display:inline-flex;align-items:center;gap:5px}
.glyph-svg{vertical-align:middle;overflow:visible}
.chart{width:100%;height:auto;display:block;font-family:inherit}
.velocity{max-width:100%;height:auto;display:block}
.velocity .tick{fill:var(--faint);font-size:11px;font-variant-numeric:tabular-nums}
.velocity .axis-title{fill:var(--muted);font-size:11.5px}
.chart .plot-bg{fill:var(--card)}.chart .band{fill:var(--crash-bg)}
.chart .grid{stroke:var(--grid);stroke-width:1}
.chart .tick{fill:var(--faint);font-size:11px;font-variant-numeric:tabular-nums}
.chart .axis-title{fill:var(--muted);font-size:11.5px}
.chart .note{fill:var(--warn);font-size:11px}
.mark.keep,.glyph.keep{fill:var(--keep);stroke:var(--card);stroke-width:1}
.mark.discard,.glyph.discard{fill:var(--discard);fill-opacity:.5}
.mark.crash,.glyph.crash{fill:none;stroke:var(--crash);stroke-width:1.7;stroke-linecap:round}
.chart a:hover .mark,.chart .mark:hover{stroke:var(--text);stroke-width:2;fill-opacity:1}
.frontier{fill:none;stroke:var(--keep);stroke-width:2;stroke-linejoin:round;opacity:.85}
.label{fill:var(--text);font-size:10.5px;paint-order:stroke;stroke:var(--card);stroke-width:3px;stroke-linejoin:round}
.label.champ-label{font-weight:650;font-size:11.5px;fill:var(--keep)}
.champ-ring{fill:none;stroke:var(--keep);stroke-width:1.5}
.curve{fill:none;stroke-width:1.6;stroke-linejoin:round}
.curve.champ{stroke:var(--keep);stroke-width:2.6}
.curve.n1{stroke:var(--c1);stroke-dasharray:6 3}.curve.n2{stroke:var(--c2);stroke-dasharray:2 3}
.curve.n3{stroke:var(--c3);stroke-dasharray:9 3 2 3}.curve.n4{stroke:var(--c4);stroke-dasharray:4 4}
.curve.n0.other{stroke:var(--c1)}
.swatch{vertical-align:middle}
.loss-wrap{display:grid;grid-template-columns:minmax(0,640px) minmax(240px,1fr);gap:8px 24px;align-items:start}
.legend.vertical{flex-direction:column;align-items:flex-start;gap:8px}
.legend.vertical>span{display:block}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--muted);font-weight:600;white-space:nowrap}
td.n,th.n{text-align:right;white-space:nowrap}
td.desc{min-width:240px;overflow-wrap:anywhere}
.err{color:var(--crash);font-size:12.5px;overflow-wrap:anywhere}
.scroll{max-height:640px;overflow:auto;border:1px solid var(--line);border-radius:8px}
.scroll thead th{position:sticky;top:0;background:var(--card);z-index:1;box-shadow:0 1px 0 var(--line)}
#runs-table tbody tr:hover{background:var(--bg)}
#runs-table tr:target{outline:2px solid var(--accent);outline-offset:-2px}
td.st,td.nw{white-space:nowrap}td code{white-space:nowrap}
td.st::before{display:inline-block;width:1.1em;font-weight:700}
tr.s-keep td.st::before{content:"\\25CF";color:var(--keep)}
tr.s-discard td.st::before{content:"\\25A0";color:var(--discard)}
tr.s-crash td.st::before{content:"\\2715";color:var(--crash)}
th button{all:unset;cursor:pointer}th button:focus-visible{outline:2px solid var(--accent)}
th[aria-sort=ascending] button::after{content:" \\25B2"}th[aria-sort=descending] button::after{content:" \\25BC"}
.controls{display:flex;flex-wrap:wrap;gap:8px 14px;align-items:center;margin:0 0 10px}
.controls input,.controls select{font:inherit;padding:5px 9px;border:1px solid var(--line);border-radius:6px;
background:var(--bg);color:var(--text)}
.controls input{min-width:260px}
.tree,.tree ul{list-style:none;margin:0;padding:0}
.tree ul{margin-left:14px;padding-left:14px;border-left:2px solid var(--line)}
.tree li{position:relative;padding:3px 0 3px 18px}
.tree li::before{content:"";position:absolute;left:2px;top:11px;width:9px;height:9px;border-radius:50%;
background:var(--keep);box-shadow:0 0 0 2px var(--card)}
.tree li.best::before{background:var(--card);border:2px solid var(--keep);width:11px;height:11px;left:1px;top:10px}
.tree li.gap::before{background:var(--line)}
.tree li:not(:last-child)::after{content:"";position:absolute;left:6px;top:20px;bottom:-12px;
border-left:2px solid var(--line)}
.tree .val{font-weight:600;font-variant-numeric:tabular-nums}
.tree .delta{font-size:12.5px;font-variant-numeric:tabular-nums}
.lineage{margin:0 0 14px}.lineage h3{margin-top:4px}
.empty{color:var(--muted);font-style:italic;margin:4px 0}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(280px,1fr));gap:10px}
.cards .mini{border:1px solid var(--line);border-radius:8px;padding:10px 12px;display:grid;gap:3px;align-content:start}
.bar{display:inline-block;width:80px;height:7px;border-radius:4px;background:var(--grid);vertical-align:middle}
.bar>span{display:block;height:100%;border-radius:4px;background:var(--keep)}
footer{color:var(--faint);font-size:12px;margin-top:24px}
@media (max-width:900px){.loss-wrap{grid-template-columns:1fr}}
@media (max-width:700px){.champ{grid-template-columns:1fr}.controls input{min-width:0;width:100%}}
@media print{
:root{--bg:#fff;--card:#fff;--text:#000;--muted:#444;--faint:#666;--line:#ccc;--grid:#e6e6e6;--keep:#11703b;
--keep-bg:#e3f4ea;--discard:#777;--crash:#b00;--crash-bg:#f7e6e6;--accent:#000;--warn:#7a4a00;--warn-bg:#fff;
--c1:#1f4bb8;--c2:#a34a20;--c3:#6f3aa6;--c4:#0b7474;color-scheme:light}
body{font-size:11px}main{max-width:none;padding:0}nav.toc,.controls,.noprint{display:none!important}
.card,.stat{border-color:#bbb;break-inside:avoid}#runs.card{break-inside:auto}
.scroll{max-height:none;overflow:visible;border:0}.scroll thead th{position:static}
tr{break-inside:avoid}a{color:inherit;text-decoration:none}
.grid2{display:block}.grid2>.card{margin-bottom:16px}}
"""

JS = """
(function () {
  "use strict";
  var table = document.getElementById("runs-table");
  if (!table || !table.tBodies.length) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var texts = rows.map(function (r) { return r.textContent.toLowerCase(); });
  var query = document.getElementById("runs-query");
  var status = document.getElementById("runs-status");
  var shown = document.getElementById("runs-shown");
  document.getElementById("runs-controls").hidden = false;

  function filter() {
    var q = query.value.trim().toLowerCase(), s = status.value, n = 0;
    rows.forEach(function (r, i) {
      var ok = (!s || r.getAttribute("data-status") === s) && (!q || texts[i].indexOf(q) !== -1);
      r.hidden = !ok;
      if (ok) { n += 1; }
    });
    shown.textContent = n + " of " + rows.length + " runs shown";
  }

  function key(row, col, numeric) {
    var text = row.cells[col].textContent.trim();
    if (!numeric) { return text === "\\u2014" || text === "" ? null : text.toLowerCase(); }
    var value = parseFloat(text.replace(/[,+\\s]/g, ""));
    return isNaN(value) ? null : value;
  }

  function sortBy(th) {
    var col = th.cellIndex, numeric = th.getAttribute("data-type") === "num";
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    Array.prototype.forEach.call(th.parentNode.cells, function (c) { c.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    var keyed = rows.map(function (r, i) { return [key(r, col, numeric), i, r]; });
    keyed.sort(function (a, b) {
      if (a[0] === b[0]) { return a[1] - b[1]; }
      if (a[0] === null) { return 1; }
      if (b[0] === null) { return -1; }
      return (a[0] < b[0] ? -1 : 1) * dir;
    });
    var frag = document.createDocumentFragment();
    keyed.forEach(function (k) { frag.appendChild(k[2]); });
    body.appendChild(frag);
  }

  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
    var button = document.createElement("button");
    button.type = "button";
    button.textContent = th.textContent;
    button.title = "sort by " + th.textContent;
    th.textContent = "";
    th.appendChild(button);
    button.addEventListener("click", function () { sortBy(th); });
  });

  function reveal() {
    var row = document.getElementById(location.hash.slice(1));
    if (row && row.hidden) {
      query.value = "";
      status.value = "";
      filter();
      row.scrollIntoView({block: "center"});
    }
  }

  query.addEventListener("input", filter);
  status.addEventListener("change", filter);
  window.addEventListener("hashchange", reveal);
  filter();
}());
"""
