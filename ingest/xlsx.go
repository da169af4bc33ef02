package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/xuri/excelize/v2"

	"github.com/zhisou/zhisou/index"
)

// Spreadsheet limits: an .xlsx is a zip archive, so its unpacked size, not
// the file size, is what a zip bomb inflates.
const (
	xlsxUnzipLimit    = 256 << 20 // all parts together, unpacked
	xlsxUnzipXMLLimit = 64 << 20  // one worksheet's XML, unpacked
	xlsxMaxSheets     = 64
)

// sheet is one worksheet read as a question bank or as a table.
type sheet struct {
	name      string
	questions []index.Question
	table     string
}

// readXLSX reads every worksheet of an .xlsx file: a sheet whose header names
// a question column is a question bank, any other sheet with content a table.
// Encrypted workbooks, archives that unpack past the limits and files that are
// not workbooks get a clear error.
func readXLSX(b []byte) ([]sheet, error) {
	return readXLSXLimited(b, xlsxUnzipLimit, xlsxUnzipXMLLimit)
}

// readXLSXLimited is readXLSX with explicit unpacking limits (tests use small ones).
func readXLSXLimited(b []byte, unzipLimit, xmlLimit int64) ([]sheet, error) {
	if bytes.HasPrefix(b, oleHeader) {
		return nil, errors.New("a password-protected workbook or a legacy .xls (OLE compound file): save it as .xlsx without a password")
	}
	f, err := excelize.OpenReader(bytes.NewReader(b), excelize.Options{UnzipSizeLimit: unzipLimit, UnzipXMLSizeLimit: xmlLimit})
	if err != nil {
		switch {
		case errors.Is(err, excelize.ErrWorkbookFileFormat), strings.Contains(err.Error(), "zip: not a valid zip file"):
			return nil, fmt.Errorf("%w: not an .xlsx workbook (%v)", ErrBinary, err)
		case strings.Contains(strings.ToLower(err.Error()), "password") || strings.Contains(err.Error(), "encrypt"):
			return nil, fmt.Errorf("workbook is password-protected: %w", err)
		case strings.Contains(err.Error(), "size limit") || strings.Contains(err.Error(), "exceeds"):
			return nil, fmt.Errorf("%w: workbook unpacks past %d bytes (a zip bomb?): %v", ErrTooLarge, unzipLimit, err)
		}
		return nil, fmt.Errorf("open workbook: %w", err)
	}
	defer f.Close()
	names := f.GetSheetList()
	if len(names) > xlsxMaxSheets {
		return nil, fmt.Errorf("%w: %d worksheets, limit %d", ErrTooLarge, len(names), xlsxMaxSheets)
	}
	var out []sheet
	for _, name := range names {
		rows, err := f.GetRows(name)
		if err != nil {
			return nil, fmt.Errorf("worksheet %q: %w", name, err)
		}
		var recs []csvRow
		for i, r := range rows {
			blank := true
			for j := range r {
				r[j] = strings.TrimSpace(r[j])
				blank = blank && r[j] == ""
			}
			if !blank {
				recs = append(recs, csvRow{line: i + 1, fields: r})
			}
		}
		if len(recs) == 0 {
			continue
		}
		merges, err := f.GetMergeCells(name)
		if err != nil {
			return nil, fmt.Errorf("worksheet %q: %w", name, err)
		}
		recs = mergedHeader(recs, merges)
		qs, table, err := parseRows(recs)
		if err != nil {
			return nil, fmt.Errorf("worksheet %q: %w", name, err)
		}
		out = append(out, sheet{name: name, questions: qs, table: table})
	}
	if len(out) == 0 {
		return nil, ErrEmpty
	}
	return out, nil
}

// mergedHeader reads a two-row header whose upper cells are merged across
// columns ("选项" over four columns, with A, B, C, D below): each merged
// cell's text is copied into every column it spans, and the header row and
// the row below are joined column by column ("选项" + "A" = "选项A"). Other
// rows are kept as they are.
func mergedHeader(recs []csvRow, merges []excelize.MergeCell) []csvRow {
	h := -1
	for i := 0; i < len(recs) && i < headerRows; i++ {
		if _, ok := headerColumns(recs[i].fields); ok {
			h = i
			break
		}
	}
	if h < 0 || h+1 >= len(recs) || recs[h+1].line != recs[h].line+1 {
		return recs
	}
	header := slices.Clone(recs[h].fields)
	spread := false
	for _, m := range merges {
		c1, r1, err1 := excelize.CellNameToCoordinates(m.GetStartAxis())
		c2, _, err2 := excelize.CellNameToCoordinates(m.GetEndAxis())
		if err1 != nil || err2 != nil || r1 != recs[h].line || c2 <= c1 || c2 > 1024 {
			continue
		}
		for len(header) < c2 {
			header = append(header, "")
		}
		for c := c1; c <= c2; c++ {
			header[c-1] = m.GetCellValue()
		}
		spread = true
	}
	if !spread {
		return recs
	}
	below := recs[h+1].fields
	for i := range header {
		if i < len(below) && below[i] != "" && below[i] != header[i] {
			header[i] = strings.TrimSpace(header[i] + below[i])
		}
	}
	out := slices.Clone(recs[:h])
	out = append(out, csvRow{line: recs[h].line, fields: header})
	return append(out, recs[h+2:]...)
}

// xlsxInputs turns a workbook into documents: one per non-empty worksheet,
// with the file's document id (and "/<sheet>" when there are several).
func xlsxInputs(root, path string, b []byte) ([]Input, error) {
	sheets, err := readXLSX(b)
	if err != nil {
		return nil, err
	}
	id := docID(root, path)
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	var out []Input
	for _, s := range sheets {
		in := Input{ID: id, Title: name, Source: path, Format: Text, Questions: s.questions, Content: s.table}
		if len(sheets) > 1 {
			in.ID, in.Title = id+"/"+s.name, name+" / "+s.name
		}
		meta := map[string]string{"sheet": s.name}
		if dir, _, ok := strings.Cut(id, "/"); ok {
			meta["folder"] = dir
		}
		in.Metadata = meta
		out = append(out, in)
	}
	return out, nil
}
