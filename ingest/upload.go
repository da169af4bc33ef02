package ingest

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	zpath "path"
	"path/filepath"
	"slices"
	"strings"
)

// Uploads: files that arrive as bytes (a server's upload endpoint) rather
// than on disk. They are read by the same code as a folder's files, named by
// the path they were sent with; a .zip is a folder.

// Upload limits: a zip's entries and its unpacked size (a zip bomb inflates
// the second, not its file size).
const (
	UploadMaxEntries  = 10000
	UploadMaxUnpacked = 512 << 20
)

// UploadedFile is one file of an upload, read.
type UploadedFile struct {
	// Path is the file's name as sent (inside a zip: its path there).
	Path   string
	Inputs []Input
	// Err is why the file was not read; Skipped says it was left out (not a
	// format ingest reads, or no text) rather than failed.
	Err     error
	Skipped bool
}

// ParseUpload reads an uploaded file, name (a relative path, "a/b.docx")
// with its bytes, into documents: one file, or each file of a .zip. A file
// over maxFileSize, or a zip over the upload limits, fails; the document ids
// are the paths without their extension, as for a folder, with ClaimID's
// rule for two files of the same name.
func ParseUpload(name string, data []byte, maxFileSize int64) ([]UploadedFile, error) {
	clean, err := uploadPath(name)
	if err != nil {
		return nil, err
	}
	if strings.ToLower(zpath.Ext(clean)) != ".zip" {
		return []UploadedFile{parseUploaded(clean, data, maxFileSize)}, nil
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not a zip archive (%v)", ErrArchive, name, err)
	}
	if len(zr.File) > UploadMaxEntries {
		return nil, fmt.Errorf("%w: %s has %d entries, limit %d", ErrArchive, name, len(zr.File), UploadMaxEntries)
	}
	budget := int64(UploadMaxUnpacked)
	var files []UploadedFile
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || hiddenPath(f.Name) {
			continue
		}
		p, err := uploadPath(f.Name)
		if err != nil {
			files = append(files, UploadedFile{Path: f.Name, Err: err})
			continue
		}
		b, err := readEntry(f, min(maxFileSize, budget))
		if errors.Is(err, ErrTooLarge) && budget < maxFileSize {
			return nil, fmt.Errorf("%w: %s unpacks past %d bytes (a zip bomb?)", ErrTooLarge, name, UploadMaxUnpacked)
		}
		if err != nil {
			files = append(files, UploadedFile{Path: p, Err: err})
			continue
		}
		budget -= int64(len(b))
		files = append(files, parseUploaded(p, b, maxFileSize))
	}
	slices.SortFunc(files, func(a, b UploadedFile) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}

// uploadPath checks a name sent with an upload: a relative path that stays
// inside the upload (no "..", not absolute, no backslashes or NUL).
func uploadPath(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%w: an uploaded file needs a name", ErrUnsupported)
	}
	if strings.ContainsAny(name, "\\\x00") || strings.HasPrefix(name, "/") || zpath.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../") {
		return "", fmt.Errorf("%w: %q escapes the upload", ErrEscapes, name)
	}
	return name, nil
}

func hiddenPath(name string) bool {
	for _, part := range strings.Split(name, "/") {
		if (strings.HasPrefix(part, ".") && part != ".." && part != ".") || part == "__MACOSX" {
			return true
		}
	}
	return false
}

// readEntry reads a zip entry, failing with ErrTooLarge past limit bytes
// whatever its header claims.
func readEntry(f *zip.File, limit int64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrArchive, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrArchive, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: unpacks past %d bytes", ErrTooLarge, limit)
	}
	return b, nil
}

// parseUploaded reads one uploaded file.
func parseUploaded(path string, b []byte, maxFileSize int64) UploadedFile {
	uf := UploadedFile{Path: path}
	ext := strings.ToLower(zpath.Ext(path))
	switch {
	case !supportedExt(ext):
		uf.Err, uf.Skipped = fmt.Errorf("%w %q", ErrUnsupported, ext), true
	case int64(len(b)) > maxFileSize:
		uf.Err = fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), maxFileSize)
	case len(bytes.TrimSpace(b)) == 0:
		uf.Err, uf.Skipped = fmt.Errorf("%w (an empty file)", ErrEmpty), true
	default:
		const root = "/upload"
		uf.Inputs, uf.Err = parseFile(root, filepath.Join(root, filepath.FromSlash(path)), b)
		uf.Skipped = errors.Is(uf.Err, ErrEmpty)
		for i := range uf.Inputs {
			if strings.HasPrefix(uf.Inputs[i].Source, root+"/") {
				uf.Inputs[i].Source = path
			}
		}
	}
	return uf
}
