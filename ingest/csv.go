package ingest

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/zhisou/zhisou/index"
)

// A .csv file is either a question bank (题库) or a plain table. It is a
// question bank when one of its first headerRows rows names a question column
// (题目, 题干, 试题, question, stem); that row is the header, and every
// non-empty row after it is one question. Otherwise the file is a plain table,
// ingested as text, one "column: value | column: value" line per row.

// headerRows is how many rows from the top may hold a question bank's header:
// banks exported from spreadsheets often start with a title or a note row.
const headerRows = 5

// maxOptions is the number of option columns a bank may have (A to F).
const maxOptions = 6

// bankColumns are the column indexes of a question bank's fields; -1 means
// the bank has no such column.
type bankColumns struct {
	Stem, Answer, Analysis, Knowledge, Difficulty, Type int
	// Options is a single column holding every option ("A. … B. …").
	Options int
	// Option are the columns of options A to F, one option each.
	Option [maxOptions]int
}

// columnRoles maps a normalised column name (see normColumn) to a field.
var columnRoles = map[string]string{
	"题目": "stem", "题干": "stem", "试题": "stem", "question": "stem", "stem": "stem",
	"答案": "answer", "正确答案": "answer", "answer": "answer",
	"解析": "analysis", "答案解析": "analysis", "analysis": "analysis", "explanation": "analysis",
	"知识点": "knowledge", "knowledgepoint": "knowledge", "topic": "knowledge",
	"难度": "difficulty", "difficulty": "difficulty",
	"题型": "type", "type": "type",
	"选项": "options", "options": "options",
}

// normColumn folds a header cell for matching: trimmed, lower case, without
// spaces, '_' and '-' ("Option A" and "option_a" are both "optiona").
func normColumn(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '_', '-', '\u3000':
			return -1
		}
		return r
	}, s)
}

// optionColumn returns the option index (0 for A) that a normalised column
// name is: "a", "选项a" or "optiona".
func optionColumn(name string) (int, bool) {
	for _, p := range []string{"选项", "option", ""} {
		rest, ok := strings.CutPrefix(name, p)
		if ok && len(rest) == 1 && rest[0] >= 'a' && rest[0] < 'a'+maxOptions {
			return int(rest[0] - 'a'), true
		}
	}
	return 0, false
}

// headerColumns reads a row as a question bank's header. It reports false
// when the row names no question column. The first column wins when two
// columns name the same field.
func headerColumns(row []string) (bankColumns, bool) {
	c := bankColumns{Stem: -1, Answer: -1, Analysis: -1, Knowledge: -1, Difficulty: -1, Type: -1, Options: -1}
	for i := range c.Option {
		c.Option[i] = -1
	}
	set := func(p *int, i int) {
		if *p < 0 {
			*p = i
		}
	}
	for i, cell := range row {
		name := normColumn(cell)
		if o, ok := optionColumn(name); ok {
			set(&c.Option[o], i)
			continue
		}
		switch columnRoles[name] {
		case "stem":
			set(&c.Stem, i)
		case "answer":
			set(&c.Answer, i)
		case "analysis":
			set(&c.Analysis, i)
		case "knowledge":
			set(&c.Knowledge, i)
		case "difficulty":
			set(&c.Difficulty, i)
		case "type":
			set(&c.Type, i)
		case "options":
			set(&c.Options, i)
		}
	}
	return c, c.Stem >= 0
}

// csvRow is a record with the line it starts on.
type csvRow struct {
	line   int
	fields []string
}

// readCSVRows parses CSV text leniently: quotes may be bare, rows may have any
// number of fields. Rows whose fields are all blank are dropped.
func readCSVRows(text string) ([]csvRow, error) {
	r := csv.NewReader(strings.NewReader(text))
	r.LazyQuotes = true
	r.FieldsPerRecord = -1
	var rows []csvRow
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("parse CSV: %w", err)
		}
		line, _ := r.FieldPos(0)
		blank := true
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
			blank = blank && rec[i] == ""
		}
		if !blank {
			rows = append(rows, csvRow{line, rec})
		}
	}
}

// parseCSV reads decoded CSV text. For a question bank it returns the
// questions, one per data row in file order; for a plain table it returns
// table text and no questions.
func parseCSV(text string) ([]index.Question, string, error) {
	rows, err := readCSVRows(text)
	if err != nil {
		return nil, "", err
	}
	return parseRows(rows)
}

// parseRows reads a table's rows (from CSV or a spreadsheet): a question
// bank's questions, or, when no header names a question column, table text.
func parseRows(rows []csvRow) ([]index.Question, string, error) {
	if len(rows) == 0 {
		return nil, "", ErrEmpty
	}
	for h := range min(len(rows), headerRows) {
		cols, ok := headerColumns(rows[h].fields)
		if !ok {
			continue
		}
		data := rows[h+1:]
		if len(data) == 0 {
			return nil, "", fmt.Errorf("%w: question bank header on line %d and no questions after it", ErrEmpty, rows[h].line)
		}
		qs := make([]index.Question, 0, len(data))
		for _, row := range data {
			q := rowQuestion(row.fields, cols)
			if q.Stem == "" {
				return nil, "", fmt.Errorf("line %d: no question in column %q", row.line, rows[h].fields[cols.Stem])
			}
			qs = append(qs, q)
		}
		return qs, "", nil
	}
	return nil, tableText(rows), nil
}

// rowQuestion reads one data row of a question bank.
func rowQuestion(row []string, c bankColumns) index.Question {
	cell := func(i int) string {
		if i < 0 || i >= len(row) {
			return ""
		}
		return row[i]
	}
	q := index.Question{
		Stem: cell(c.Stem), Answer: cell(c.Answer), Analysis: cell(c.Analysis),
		Knowledge: cell(c.Knowledge), Difficulty: cell(c.Difficulty), Type: cell(c.Type),
	}
	for i, col := range c.Option {
		if t := cell(col); t != "" {
			q.Options = append(q.Options, index.Option{Label: string(rune('A' + i)), Text: t})
		}
	}
	if len(q.Options) == 0 {
		q.Options = splitOptions(cell(c.Options))
	}
	return q
}

// optionLabel finds an option's label inside a single options cell: a letter
// A-F at the start or after a separator, followed by '.', '、', ':' or ')'.
var optionLabel = regexp.MustCompile(`(?:^|[\s;；|｜,，])([A-Fa-f])\s*[.．、:：)）]`)

// splitOptions splits a cell holding every option ("A. 降价 B. 强调价值",
// "A、降价；B、强调价值") into options. Without labels, each line (or each
// ';'-separated part) is one option, labelled A, B, ... in order.
func splitOptions(s string) []index.Option {
	if s == "" {
		return nil
	}
	var out []index.Option
	locs := optionLabel.FindAllStringSubmatchIndex(s, -1)
	if len(locs) >= 2 {
		for i, loc := range locs {
			end := len(s)
			if i+1 < len(locs) {
				end = locs[i+1][0]
			}
			text := strings.Trim(s[loc[1]:end], " \t\r\n;；|｜,，")
			out = append(out, index.Option{Label: strings.ToUpper(s[loc[2]:loc[3]]), Text: text})
		}
		if strings.TrimSpace(s[:locs[0][0]]) == "" {
			return out
		}
		out = nil // text before the first label: not a labelled list
	}
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == ';' || r == '；' || r == '|' || r == '｜' })
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, index.Option{Label: string(rune('A' + len(out)%26)), Text: p})
		}
	}
	return out
}

// tableText renders a plain table: the first row names the columns, and each
// later row is one line of "column: value" pairs joined by " | ". A table with
// one row is that row's cells.
func tableText(rows []csvRow) string {
	head := rows[0].fields
	if len(rows) == 1 {
		return strings.Join(head, " | ")
	}
	var b strings.Builder
	for _, row := range rows[1:] {
		var cells []string
		for i, v := range row.fields {
			if v == "" {
				continue
			}
			name := ""
			if i < len(head) {
				name = head[i]
			}
			if name == "" {
				cells = append(cells, v)
			} else {
				cells = append(cells, name+": "+v)
			}
		}
		b.WriteString(strings.Join(cells, " | "))
		b.WriteByte('\n')
	}
	return b.String()
}
