package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/ingest"
)

// Uploads: files sent as bytes (DOCX, PPTX, XLSX/CSV, PDF, HTML, Markdown,
// text, transcripts, or a zip of a folder), read on the server by the same
// ingest code as 'zhisou ingest', and written like any upsert.

// MaxUploadBytes bounds one upload call, all its files together.
const MaxUploadBytes = 64 << 20

// MaxUploadFileBytes bounds one file of an upload (inside a zip: unpacked),
// as 'zhisou ingest' bounds a file by default.
const MaxUploadFileBytes = 32 << 20

// UploadFile is a file sent with an upload.
type UploadFile struct {
	// Name is the file's name, a relative path ("course/a.docx"); its
	// extension says the format and the path without it is the document id.
	Name string
	Data []byte
}

// FileResult is what an upload did with one file (a zip gives one for each
// of its files).
type FileResult struct {
	Path string
	// Documents written from the file, with what became of each.
	Documents []UpsertResult
	// Error says why the file was not written; Skipped marks a file left out
	// (not a format zhisou reads, or no text) rather than failed.
	Error   string
	Skipped bool
}

// UploadFiles reads the files and upserts their documents into collection,
// which must exist. A file that cannot be read is reported and the others
// are written; the error is for the call as a whole (authorisation, limits,
// the store).
func (s *Service) UploadFiles(ctx context.Context, collection string, files []UploadFile) ([]FileResult, error) {
	if err := checkName("collection", collection); err != nil {
		return nil, err
	}
	if err := s.allow(ctx, index.RoleWrite, "upload files", collection); err != nil {
		return nil, err
	}
	var total int64
	for _, f := range files {
		total += int64(len(f.Data))
	}
	if total > MaxUploadBytes {
		return nil, fmt.Errorf("%w: an upload of %d MiB is over the limit of %d MiB; send fewer files at once", ErrResourceExhausted, total>>20, MaxUploadBytes>>20)
	}
	if len(files) == 0 {
		return nil, Invalid("files", "files: none sent")
	}
	if _, err := s.store.Collection(collection); err != nil {
		return nil, classify(fmt.Errorf("collection %q: %w", collection, err))
	}
	var results []FileResult
	var batch []ingest.Input
	var from []int // batch[i] comes from results[from[i]]
	owner := map[string]string{}
	for _, f := range files {
		read, err := ingest.ParseUpload(f.Name, f.Data, MaxUploadFileBytes)
		if err != nil {
			results = append(results, FileResult{Path: f.Name, Error: err.Error()})
			continue
		}
		for _, uf := range read {
			r := FileResult{Path: uf.Path, Skipped: uf.Skipped}
			if uf.Err != nil {
				r.Error = uf.Err.Error()
			}
			for _, in := range uf.Inputs {
				if err := ingest.ClaimID(owner, &in, uf.Path); err != nil {
					r.Error = err.Error()
					continue
				}
				batch = append(batch, in)
				from = append(from, len(results))
			}
			results = append(results, r)
		}
	}
	if err := s.writeUploaded(ctx, collection, batch, from, results); err != nil {
		return nil, err
	}
	s.audit(ctx, "upload files", collection, len(batch))
	return results, nil
}

// writeUploaded upserts the documents read, in batches, one by one when a
// batch is refused, recording each outcome with its file.
func (s *Service) writeUploaded(ctx context.Context, collection string, batch []ingest.Input, from []int, results []FileResult) error {
	const size = 100
	for lo := 0; lo < len(batch); lo += size {
		hi := min(lo+size, len(batch))
		res, err := s.UpsertDocuments(ctx, UpsertRequest{Collection: collection, Documents: batch[lo:hi]})
		if err == nil {
			for i, r := range res {
				results[from[lo+i]].Documents = append(results[from[lo+i]].Documents, r)
			}
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			return err
		}
		for i := lo; i < hi; i++ { // find the bad document: it fails its file alone
			res, err := s.UpsertDocuments(ctx, UpsertRequest{Collection: collection, Documents: batch[i : i+1]})
			switch {
			case errors.Is(err, ErrInvalid):
				results[from[i]].Error = err.Error()
			case err != nil:
				return err
			default:
				results[from[i]].Documents = append(results[from[i]].Documents, res...)
			}
		}
	}
	return nil
}
