package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
	xunicode "golang.org/x/text/encoding/unicode"
)

// Errors a file can fail with; each FileError wraps one of them or a parse error.
var (
	// ErrEmpty means the file or document has no text.
	ErrEmpty = errors.New("empty: no text")
	// ErrBinary means the file is not text (NUL bytes or undecodable).
	ErrBinary = errors.New("binary or unknown encoding: not text")
	// ErrTooLarge means the file exceeds the size limit.
	ErrTooLarge = errors.New("over the size limit")
	// ErrUnsupported means the file's format is not one ingest reads.
	ErrUnsupported = errors.New("unsupported format")
	// ErrEscapes means a symlink points outside the folder being ingested.
	ErrEscapes = errors.New("symlink points outside the folder")
	// ErrMixedEncoding means a text file has UTF-8 lines and lines in
	// another encoding (GBK pasted into a UTF-8 file): either reading of the
	// whole file would garble some lines.
	ErrMixedEncoding = errors.New("mixed encodings")
)

// Decode turns file bytes into UTF-8 text. It accepts UTF-8 (with or without a
// BOM), UTF-16 with a BOM, and GBK/GB18030; it refuses binary data, naming
// what it found. It returns the name of the encoding it decoded.
func Decode(b []byte) (string, string, error) {
	switch {
	case len(bytes.TrimSpace(b)) == 0:
		return "", "", ErrEmpty
	case bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}):
		b = b[3:]
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}), bytes.HasPrefix(b, []byte{0xFE, 0xFF}):
		dec := xunicode.UTF16(xunicode.LittleEndian, xunicode.ExpectBOM).NewDecoder()
		out, err := dec.Bytes(b)
		if err != nil {
			return "", "", fmt.Errorf("decode UTF-16: %w", err)
		}
		if bytes.IndexByte(out, 0) >= 0 {
			return "", "", fmt.Errorf("%w (NUL characters in UTF-16 text)", ErrBinary)
		}
		return checkText(string(out), "utf-16")
	}
	if i := bytes.IndexByte(b[:min(len(b), 8192)], 0); i >= 0 {
		return "", "", fmt.Errorf("%w (NUL byte at offset %d)", ErrBinary, i)
	}
	if utf8.Valid(b) {
		return checkText(string(b), "utf-8")
	}
	if err := mixedEncoding(b); err != nil {
		return "", "", err
	}
	out, err := simplifiedchinese.GB18030.NewDecoder().Bytes(b)
	if err != nil {
		return "", "", fmt.Errorf("%w (neither UTF-8 nor GB18030)", ErrBinary)
	}
	return checkText(string(out), "gb18030")
}

// mixedEncoding reports a file that is not UTF-8 as a whole but has lines
// that are, with about ten Chinese characters (20 continuation bytes) among
// them: GBK text forms valid UTF-8 only by chance, on a few short lines.
func mixedEncoding(b []byte) error {
	utf8Runes, firstBad, bad, good := 0, 0, 0, 0
	for n, line := 1, b; len(line) > 0; n++ {
		i := bytes.IndexByte(line, '\n')
		cur := line
		if i >= 0 {
			cur, line = line[:i], line[i+1:]
		} else {
			line = nil
		}
		switch {
		case !utf8.Valid(cur):
			bad++
			if firstBad == 0 {
				firstBad = n
			}
		case utf8.RuneCount(cur) < len(cur):
			good++
			utf8Runes += len(cur) - utf8.RuneCount(cur) // ≥ 1 per multi-byte character
		}
	}
	if bad > 0 && utf8Runes >= 20 {
		return fmt.Errorf("%w: %d lines are UTF-8 and %d are not (the first at line %d, GBK?); save the file in one encoding, UTF-8", ErrMixedEncoding, good, bad, firstBad)
	}
	return nil
}

// checkText refuses decoded text that is mostly control characters or
// replacement characters: a binary file that happened to decode.
func checkText(s, enc string) (string, string, error) {
	if len(bytes.TrimSpace([]byte(s))) == 0 {
		return "", "", ErrEmpty
	}
	bad, total := 0, 0
	for _, r := range s {
		total++
		if r == utf8.RuneError || (unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' && r != '\f') {
			bad++
		}
	}
	if bad*20 > total { // over 5%
		return "", "", fmt.Errorf("%w (%d of %d characters are control or undecodable, read as %s)", ErrBinary, bad, total, enc)
	}
	return s, enc, nil
}
