// Search a zhisou collection from Node.js over gRPC.
//
//   npm ci
//   node search.js [-addr 127.0.0.1:7700] [-collection default] [-k 3] 客户嫌价格太贵怎么办
//
// The API key, when the server needs one, comes from ZHISOU_API_KEY. The proto
// (edition 2023) is loaded at run time by @grpc/proto-loader, so no protoc is
// needed; it prints each hit as JSON, one a line.
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_DIR = path.join(__dirname, '..', '..', 'proto');

function parseArgs(argv) {
  const opts = { addr: '127.0.0.1:7700', collection: 'default', k: 3, query: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-addr') opts.addr = argv[++i];
    else if (a === '-collection') opts.collection = argv[++i];
    else if (a === '-k') opts.k = Number(argv[++i]);
    else opts.query.push(a);
  }
  if (opts.query.length === 0) {
    throw new Error('usage: node search.js [-addr HOST:PORT] [-collection NAME] [-k N] QUERY');
  }
  return opts;
}

function client(addr) {
  const def = protoLoader.loadSync(path.join(PROTO_DIR, 'retrieval/v1/retrieval.proto'), {
    keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [PROTO_DIR],
  });
  const pkg = grpc.loadPackageDefinition(def);
  return new pkg.retrieval.v1.RetrievalService(addr, grpc.credentials.createInsecure());
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const c = client(opts.addr);
  const md = new grpc.Metadata();
  if (process.env.ZHISOU_API_KEY) md.set('authorization', 'Bearer ' + process.env.ZHISOU_API_KEY);
  const deadline = new Date(Date.now() + 5000);
  c.Search({ collection: opts.collection, query: opts.query.join(' '), top_k: opts.k }, md, { deadline }, (err, resp) => {
    if (err) {
      console.error(`search: ${grpc.status[err.code]}: ${err.details}`);
      process.exit(1);
    }
    for (const h of resp.hits) {
      // start_char/end_char slice the text in characters, as JavaScript counts them for CJK.
      const marked = h.highlights.map((s) => [...h.text].slice(s.start_char, s.end_char).join(''));
      console.log(JSON.stringify({ document_id: h.document_id, heading_path: h.heading_path, score: h.score, highlights: marked }));
    }
    c.close();
  });
}

main();
