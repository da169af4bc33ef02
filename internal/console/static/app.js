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

document.addEventListener('DOMContentLoaded', () => {
  $('apikey').value = key();
  $('apikey').addEventListener('change', () => { sessionStorage.setItem('zhisou-key', $('apikey').value.trim()); loadCollections(); });
  $('collection').addEventListener('change', () => { sessionStorage.setItem('zhisou-collection', collection()); loadCollections(); });
  $('search-form').addEventListener('submit', search);
  $('upload-form').addEventListener('submit', upload);
  loadCollections();
});
