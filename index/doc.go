// Package index is zhisou's data model: collections and their settings,
// documents, chunks and question-bank items, lexicons, the records of the
// write log, and the query terms, filters and hits that searches exchange.
//
// It holds types and their validation only. The packages under it do the work:
//
//	index/analysis  text → terms: normalisation, gse segmentation, grams, keywords, lexicon matching
//	index/bm25      one bleve index per collection and BM25F scoring over its postings
//	index/graph     a collection's outline and keyword graph, in memory
//	index/store     the Store: Badger (the truth), the write log, apply and recovery; wires the others
//	index/natslog   the write log on NATS JetStream, shared by replicas (store.SharedLog), and its snapshots
//
// Imports run one way: store → {bm25, graph} → analysis → index; natslog →
// index (the store sees it through its SharedLog interface).
package index
