// The zhisou console: calls the HTTP/JSON API of the server that serves it.
// Every piece of server text is put into the page as text nodes or
// textContent, never parsed as markup, so document text cannot inject HTML
// or script (console_test.go checks the script for markup writes).
'use strict';

const $ = (id) => document.getElementById(id);

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props || {});
  for (const c of children) {
    if (c !== null && c !== undefined) e.append(c); // strings become text nodes
  }
  return e;
}

function key() { return sessionStorage.getItem('zhisou-key') || ''; }

async function api(method, path, body, raw) {
  const headers = {};
  if (key()) headers['Authorization'] = 'Bearer ' + key();
  let payload;
  if (body !== undefined && !raw) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const resp = await fetch(path, { method, headers, body: payload });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(data.message || ('HTTP ' + resp.status));
  return data;
}

function showError(err) { $('error').textContent = err ? String(err.message || err) : ''; }

function collection() { return $('collection').value; }

function enc(s) { return encodeURIComponent(s); }

async function loadCollections() {
  showError();
  const sel = $('collection');
  const previous = sel.value || sessionStorage.getItem('zhisou-collection') || 'default';
  try {
    const data = await api('GET', '/v1/collections?page_size=1000');
    sel.replaceChildren(...data.collections.map((c) => el('option', { value: c.name, textContent: c.name })));
    if (data.collections.some((c) => c.name === previous)) sel.value = previous;
    showStats(data.collections);
  } catch (err) {
    sel.replaceChildren();
    showError(err);
  }
}

function showStats(colls) {
  const c = colls.find((x) => x.name === collection());
  $('stats').textContent = c ? `${c.document_count} documents, ${c.chunk_count} passages` : '';
}

// highlighted puts text into node with its highlights marked; the
// highlights' start_char/end_char count Unicode code points.
function highlighted(text, highlights) {
  const chars = Array.from(text);
  const out = el('p', { className: 'hit-text' });
  let at = 0;
  for (const h of highlights || []) {
    if (h.start_char < at) continue;
    out.append(chars.slice(at, h.start_char).join(''));
    out.append(el('mark', { textContent: chars.slice(h.start_char, h.end_char).join('') }));
    at = h.end_char;
  }
  out.append(chars.slice(at).join(''));
  return out;
}

function evidenceText(e) {
  if (!e) return '';
  const parts = [];
  if (e.bm25_rank) parts.push(`bm25 rank ${e.bm25_rank} (score ${Number(e.bm25_score).toFixed(3)})`);
  if (e.outline_rank) parts.push(`outline rank ${e.outline_rank}: heading ${(e.outline_path || []).join(' > ')}`);
  if (e.graph_rank) parts.push(`keyword graph rank ${e.graph_rank}: via ${(e.graph_path || []).join(' → ')}`);
  parts.push(`fused rank ${e.fused_rank}`);
  return parts.join('; ');
}

async function search(ev) {
  ev.preventDefault();
  showError();
  const req = { query: $('query').value, top_k: Number($('topk').value) || 10, mode: $('mode').value };
  const w = ['bm25', 'outline', 'graph'].map((n) => $('w-' + n).value);
  if (w.some((v) => v !== '')) {
    req.fusion = { bm25: Number(w[0] || 0), outline: Number(w[1] || 0), graph: Number(w[2] || 0) };
  }
  $('search-status').textContent = 'searching…';
  try {
    const data = await api('POST', `/v1/collections/${enc(collection())}:search`, req);
    $('search-status').textContent = `${data.hits.length} hits in ${data.took}`;
    $('hits').replaceChildren(...data.hits.map(hitItem));
  } catch (err) {
    $('search-status').textContent = '';
    $('hits').replaceChildren();
    showError(err);
  }
}

function hitItem(h) {
  const evidence = el('p', { className: 'evidence', hidden: true, textContent: evidenceText(h.evidence) });
  const why = el('button', { className: 'link why', type: 'button', textContent: 'why found?' });
  why.addEventListener('click', () => { evidence.hidden = !evidence.hidden; });
  const outline = el('button', { className: 'link open-outline', type: 'button', textContent: 'outline' });
  outline.addEventListener('click', () => showOutline(h.document_id));
  return el('li', { className: 'hit' },
    el('div', { className: 'hit-title', textContent: `${h.document_title} [${h.document_id}] · ${Number(h.score).toFixed(3)}` }),
    el('div', { className: 'hit-path', textContent: (h.heading_path || []).join(' > ') }),
    highlighted(h.text, h.highlights),
    why, ' · ', outline, evidence);
}

function outlineList(nodes) {
  return el('ul', {}, ...nodes.map((n) => el('li', {},
    `${n.title || '(before the first heading)'} (${(n.chunk_ids || []).length})`,
    (n.children && n.children.length) ? outlineList(n.children) : null)));
}

async function showOutline(id) {
  showError();
  try {
    const data = await api('GET', `/v1/collections/${enc(collection())}/documents/${id.split('/').map(enc).join('/')}`);
    $('outline-title').textContent = `${data.document.title} [${data.document.id}]`;
    const list = outlineList(data.outline);
    $('outline').replaceChildren(list.children.length ? list : el('li', { textContent: '(no headings)' }));
  } catch (err) {
    showError(err);
  }
}

function upload(ev) {
  ev.preventDefault();
  showError();
  const files = $('files').files;
  if (!files.length) return;
  const form = new FormData();
  for (const f of files) form.append('file', f, f.name);
  const xhr = new XMLHttpRequest();
  const bar = $('upload-progress');
  bar.hidden = false;
  bar.value = 0;
  xhr.upload.addEventListener('progress', (e) => { if (e.lengthComputable) bar.value = 100 * e.loaded / e.total; });
  xhr.addEventListener('load', () => {
    bar.hidden = true;
    let data = {};
    try { data = JSON.parse(xhr.responseText); } catch (e) { /* shown below */ }
    if (xhr.status !== 200) {
      showError(data.message || ('HTTP ' + xhr.status));
      return;
    }
    $('upload-results').replaceChildren(...data.files.map((f) => {
      const docs = (f.documents || []).map((d) => `${d.document_id} ${d.outcome.replace('UPSERT_OUTCOME_', '').toLowerCase()}`).join(', ');
      const cls = f.error && !f.skipped ? 'failed' : (f.skipped ? 'skipped' : 'done');
      return el('li', { className: cls, textContent: `${f.path}: ${f.skipped ? 'skipped' : ''} ${docs} ${f.error}`.replace(/\s+/g, ' ').trim() });
    }));
    loadCollections();
  });
  xhr.addEventListener('error', () => { bar.hidden = true; showError('upload failed: the server did not answer'); });
  xhr.open('POST', `/v1/collections/${enc(collection())}/files`);
  if (key()) xhr.setRequestHeader('Authorization', 'Bearer ' + key());
  xhr.send(form);
}

// Charts of an eval run, drawn as SVG elements (no library, no markup).
const SVG = 'http://www.w3.org/2000/svg';

function svgEl(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// chart draws bars or lines in svg: groups is [{label, values:[...]}],
// one value a series; max is the top of the y axis.
function barChart(svg, groups, series, max, fmt) {
  const W = 320, H = 180, L = 30, B = 30, T = 10;
  const kids = [svgEl('line', { x1: L, y1: H - B, x2: W, y2: H - B, stroke: '#999' })];
  for (const f of [0, 0.5, 1]) {
    kids.push(svgEl('text', { x: 2, y: H - B - f * (H - B - T) + 3 }, fmt(f * max)));
  }
  const gw = (W - L) / Math.max(groups.length, 1);
  const bw = (gw * 0.8) / series.length;
  groups.forEach((g, i) => {
    g.values.forEach((v, s) => {
      const h = max > 0 ? (v / max) * (H - B - T) : 0;
      const r = svgEl('rect', { class: 'bar series-' + s, x: L + i * gw + gw * 0.1 + s * bw, y: H - B - h, width: bw, height: h });
      r.append(svgEl('title', {}, `${series[s]} ${g.label}: ${fmt(v)}`));
      kids.push(r);
    });
    kids.push(svgEl('text', { x: L + i * gw + gw / 2, y: H - B + 12, 'text-anchor': 'middle' }, g.label));
  });
  series.forEach((name, s) => kids.push(svgEl('text', { class: 'series-' + s, x: W - 60, y: T + 10 + s * 11 }, name)));
  svg.replaceChildren(...kids);
}

function lineChart(svg, xs, lines, series) {
  const W = 320, H = 180, L = 30, B = 30, T = 10;
  const x = (i) => L + (i / Math.max(xs.length - 1, 1)) * (W - L - 10);
  const y = (v) => H - B - v * (H - B - T);
  const kids = [svgEl('line', { x1: L, y1: H - B, x2: W, y2: H - B, stroke: '#999' })];
  for (const f of [0, 0.5, 1]) kids.push(svgEl('text', { x: 2, y: y(f) + 3 }, f.toFixed(1)));
  xs.forEach((k, i) => kids.push(svgEl('text', { x: x(i), y: H - B + 12, 'text-anchor': 'middle' }, 'k=' + k)));
  lines.forEach((vals, s) => {
    kids.push(svgEl('polyline', { class: 'series-' + s, points: vals.map((v, i) => `${x(i)},${y(v)}`).join(' ') }));
    kids.push(svgEl('text', { class: 'series-' + s, x: W - 60, y: T + 10 + s * 11 }, series[s]));
  });
  svg.replaceChildren(...kids);
}

function showEval(text) {
  const line = text.trim().split('\n').reverse().find((l) => l.trim().startsWith('{'));
  if (!line) throw new Error('no JSON line in the file: run zhisou eval with -json');
  const data = JSON.parse(line);
  // zhisou first, then the baseline, when the run had one.
  const sides = data.zhisou ? Object.entries(data).sort(([a], [b]) => (a === 'zhisou' ? -1 : b === 'zhisou' ? 1 : a.localeCompare(b))) : [['zhisou', data]];
  const names = sides.map(([n]) => n);
  $('eval-summary').textContent = sides.map(([n, m]) =>
    `${n}: ${m.queries} queries, recall@10 ${m['recall@10']}, mrr@10 ${m['mrr@10']}, ndcg@10 ${m['ndcg@10']}, p50 ${m.latency_ms ? m.latency_ms.p50 : '?'} ms`).join(' · ');
  const ks = Object.keys(sides[0][1].recall_curve || {}).map(Number).sort((a, b) => a - b);
  lineChart($('eval-recall'), ks, sides.map(([, m]) => ks.map((k) => (m.recall_curve || {})[k] || 0)), names);
  const kinds = Object.keys(sides[0][1].by_kind || {}).sort();
  barChart($('eval-kinds'), kinds.map((k) => ({ label: k, values: sides.map(([, m]) => ((m.by_kind || {})[k] || {})['recall@10'] || 0) })), names, 1, (v) => v.toFixed(2));
  const buckets = sides[0][1].latency_histogram || [];
  const counts = sides.map(([, m]) => (m.latency_histogram || []).map((b) => b.count));
  barChart($('eval-latency'), buckets.map((b, i) => ({ label: b.le_ms ? '≤' + b.le_ms : 'more', values: counts.map((c) => c[i] || 0) })),
    names, Math.max(1, ...counts.flat()), (v) => String(Math.round(v)));
}

function loadEval() {
  showError();
  const f = $('eval-file').files[0];
  if (!f) return;
  f.text().then(showEval).catch(showError);
}

document.addEventListener('DOMContentLoaded', () => {
  $('apikey').value = key();
  $('apikey').addEventListener('change', () => { sessionStorage.setItem('zhisou-key', $('apikey').value.trim()); loadCollections(); });
  $('collection').addEventListener('change', () => { sessionStorage.setItem('zhisou-collection', collection()); loadCollections(); });
  $('search-form').addEventListener('submit', search);
  $('upload-form').addEventListener('submit', upload);
  $('eval-file').addEventListener('change', loadEval);
  loadCollections();
});
