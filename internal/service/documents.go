package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/ingest"
)

// UpsertRequest is a batch of documents to write into one collection.
type UpsertRequest struct {
	Collection string
	// Documents are built into chunks (ingest.Build) after validation.
	Documents []ingest.Input
	// FieldPrefix comes before every field name in errors, e.g. "message 3: "
	// for the fourth message of a stream; empty for a single request.
	FieldPrefix string
}

// UpsertResult is what an upsert did with one document.
type UpsertResult struct {
	DocumentID string
	Outcome    index.Outcome
	// Chunks is the number of chunks the document was built into.
	Chunks int
}

// UpsertDocuments validates and builds the documents and writes them; a nil
// error means they are durable. Results are in the order of the request.
func (s *Service) UpsertDocuments(ctx context.Context, req UpsertRequest) ([]UpsertResult, error) {
	if err := checkName(req.FieldPrefix+"collection", req.Collection); err != nil {
		return nil, err
	}
	if err := s.allow(ctx, index.RoleWrite, "write documents", req.Collection); err != nil {
		return nil, err
	}
	if err := s.allowKeyBytes(ctx, inputBytes(req.Documents)); err != nil {
		return nil, err
	}
	release, err := s.admitWrite(ctx, inputBytes(req.Documents))
	if err != nil {
		return nil, err
	}
	defer release()
	docs, err := s.buildDocuments(req.FieldPrefix+"documents", req.Documents)
	if err != nil {
		return nil, err
	}
	outs, err := s.store.Upsert(ctx, req.Collection, docs)
	if err != nil {
		return nil, classify(err)
	}
	s.audit(ctx, "upsert documents", req.Collection, len(docs))
	res := make([]UpsertResult, len(outs))
	for i, o := range outs {
		if s.written != nil {
			s.written.WithLabelValues(o.String()).Inc()
		}
		res[i] = UpsertResult{DocumentID: docs[i].ID, Outcome: o, Chunks: len(docs[i].Chunks)}
	}
	return res, nil
}

// buildDocuments validates and builds documents; field names in errors start
// with prefix (e.g. "documents").
func (s *Service) buildDocuments(prefix string, ins []ingest.Input) ([]index.Document, error) {
	if len(ins) == 0 {
		return nil, Invalid(prefix, "%s is empty", prefix)
	}
	if len(ins) > MaxDocsPerUpsert {
		return nil, Invalid(prefix, "%s has %d documents, over the limit of %d per request", prefix, len(ins), MaxDocsPerUpsert)
	}
	docs := make([]index.Document, len(ins))
	seen := map[string]int{}
	for i, in := range ins {
		f := fmt.Sprintf("%s[%d]", prefix, i)
		if in.ID == "" {
			return nil, Invalid(f+".id", "%s.id is empty", f)
		}
		if j, dup := seen[in.ID]; dup {
			return nil, Invalid(f+".id", "%s.id %q repeats %s[%d].id", f, in.ID, prefix, j)
		}
		seen[in.ID] = i
		if err := checkInput(f, in); err != nil {
			return nil, err
		}
		d, err := ingest.Build(in, s.chunk)
		if err != nil {
			return nil, invalidCause(f, err)
		}
		docs[i] = d
	}
	return docs, nil
}

// checkInput checks a document's text fields and questions; field names in
// errors start with f (e.g. "documents[0]").
func checkInput(f string, in ingest.Input) error {
	for name, v := range map[string]string{"id": in.ID, "title": in.Title, "source": in.Source, "content": in.Content} {
		if err := checkUTF8(f+"."+name, v); err != nil {
			return err
		}
	}
	for k, v := range in.Metadata {
		if err := errors.Join(checkUTF8(f+".metadata key", k), checkUTF8(f+".metadata["+k+"]", v)); err != nil {
			return err
		}
	}
	for j, q := range in.Questions {
		if err := checkQuestion(fmt.Sprintf("%s.questions[%d]", f, j), q); err != nil {
			return err
		}
	}
	return nil
}

// checkQuestion checks a question-bank item: a stem, and UTF-8 text.
func checkQuestion(g string, q index.Question) error {
	if strings.TrimSpace(q.Stem) == "" {
		return Invalid(g+".stem", "%s.stem is empty", g)
	}
	check := map[string]string{
		"stem": q.Stem, "answer": q.Answer, "analysis": q.Analysis,
		"knowledge_point": q.Knowledge, "difficulty": q.Difficulty, "type": q.Type,
	}
	for k, o := range q.Options {
		check[fmt.Sprintf("options[%d].label", k)] = o.Label
		check[fmt.Sprintf("options[%d].text", k)] = o.Text
	}
	for name, v := range check {
		if err := checkUTF8(g+"."+name, v); err != nil {
			return err
		}
	}
	return nil
}

// DeleteDocuments deletes documents by id and returns the ids it deleted and
// those that were not there, each in request order.
func (s *Service) DeleteDocuments(ctx context.Context, collection string, ids []string) (deleted, missing []string, err error) {
	if err := checkName("collection", collection); err != nil {
		return nil, nil, err
	}
	if err := s.allow(ctx, index.RoleWrite, "delete documents", collection); err != nil {
		return nil, nil, err
	}
	if len(ids) == 0 {
		return nil, nil, Invalid("document_ids", "document_ids is empty")
	}
	if len(ids) > MaxDocsPerUpsert {
		return nil, nil, Invalid("document_ids", "document_ids has %d ids, over the limit of %d", len(ids), MaxDocsPerUpsert)
	}
	for i, id := range ids {
		if err := checkID(fmt.Sprintf("document_ids[%d]", i), id); err != nil {
			return nil, nil, err
		}
	}
	outs, err := s.store.Delete(ctx, collection, ids)
	if err != nil {
		return nil, nil, classify(err)
	}
	s.audit(ctx, "delete documents", collection, len(ids))
	for i, o := range outs {
		if o == index.Deleted {
			deleted = append(deleted, ids[i])
		} else {
			missing = append(missing, ids[i])
		}
	}
	return deleted, missing, nil
}

// GetDocument returns a document with its chunks (Outline builds its
// heading tree).
func (s *Service) GetDocument(ctx context.Context, collection, id string) (index.Document, error) {
	if err := checkName("collection", collection); err != nil {
		return index.Document{}, err
	}
	if err := s.allow(ctx, index.RoleRead, "read documents", collection); err != nil {
		return index.Document{}, err
	}
	if err := checkID("document_id", id); err != nil {
		return index.Document{}, err
	}
	d, err := s.store.Document(ctx, collection, id)
	return d, classify(err)
}

// ListDocuments returns a page of a collection's documents by id (without
// their chunks' text), and the token of the next page ("" after the last).
func (s *Service) ListDocuments(ctx context.Context, collection string, pageSize int, pageToken string) ([]index.Document, string, error) {
	if err := checkName("collection", collection); err != nil {
		return nil, "", err
	}
	if err := s.allow(ctx, index.RoleRead, "list documents", collection); err != nil {
		return nil, "", err
	}
	size, after, err := pageParams(pageSize, pageToken)
	if err != nil {
		return nil, "", err
	}
	docs, more, err := s.store.ListDocuments(ctx, collection, after, size)
	if err != nil {
		return nil, "", classify(err)
	}
	next := ""
	if more && len(docs) > 0 {
		next = encodePageToken(docs[len(docs)-1].ID)
	}
	return docs, next, nil
}

// OutlineNode is a heading of a document's outline.
type OutlineNode struct {
	// Title is the heading; empty for the node of the chunks before the
	// first heading.
	Title string
	// HeadingPath is the path from the document's top heading to this one.
	HeadingPath []string
	// ChunkIDs are the chunks directly under this heading, in order.
	ChunkIDs []string
	Children []*OutlineNode
}

// Outline builds the heading tree of a document from its chunks' heading
// paths. Chunks before the first heading come first, under a node without
// a title.
func Outline(chunks []index.Chunk) []*OutlineNode {
	root := &OutlineNode{}
	for _, c := range chunks {
		node := root
		for depth, title := range c.HeadingPath {
			var child *OutlineNode
			if n := len(node.Children); n > 0 && node.Children[n-1].Title == title {
				child = node.Children[n-1]
			} else {
				child = &OutlineNode{Title: title, HeadingPath: slices.Clone(c.HeadingPath[:depth+1])}
				node.Children = append(node.Children, child)
			}
			node = child
		}
		node.ChunkIDs = append(node.ChunkIDs, c.ID)
	}
	if len(root.ChunkIDs) > 0 {
		return append([]*OutlineNode{{ChunkIDs: root.ChunkIDs}}, root.Children...)
	}
	return root.Children
}
