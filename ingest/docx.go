package ingest

import (
	"archive/zip"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	zpath "path"
	"strconv"
	"strings"
)

// Archive limits for OOXML files (DOCX): a zip's unpacked size, not its file
// size, is what a zip bomb inflates.
const (
	ooxmlMaxEntries  = 10000
	ooxmlMaxUnpacked = 256 << 20 // all the parts read, unpacked
)

// oleHeader starts an OLE compound file: a password-protected (encrypted)
// Office document or a legacy .doc/.xls.
var oleHeader = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}

// ErrArchive means an archive-based file is malformed or unsafe (an entry
// that escapes the archive, too many entries, a zip bomb).
var ErrArchive = errors.New("malformed or unsafe archive")

// openOOXML checks an Office Open XML archive and returns a reader of its
// parts that enforces the unpacked-size limit across every part read.
func openOOXML(b []byte, kind string, maxUnpacked int64) (*ooxml, error) {
	if bytes.HasPrefix(b, oleHeader) {
		return nil, fmt.Errorf("a password-protected %s or a legacy binary file (OLE compound file): save it as %s without a password", kind, kind)
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("%w: not a %s (%v)", ErrBinary, kind, err)
	}
	if len(zr.File) > ooxmlMaxEntries {
		return nil, fmt.Errorf("%w: %d entries, limit %d", ErrArchive, len(zr.File), ooxmlMaxEntries)
	}
	parts := map[string]*zip.File{}
	for _, f := range zr.File {
		name := f.Name
		if strings.HasPrefix(name, "/") || strings.Contains(name, "\\") || zpath.Clean(name) != name || strings.HasPrefix(name, "../") || name == ".." {
			return nil, fmt.Errorf("%w: entry %q escapes the archive", ErrArchive, name)
		}
		parts[name] = f
	}
	return &ooxml{parts: parts, budget: maxUnpacked, limit: maxUnpacked}, nil
}

type ooxml struct {
	parts  map[string]*zip.File
	budget int64 // unpacked bytes still allowed
	limit  int64
}

// read returns a part's bytes, or nil when the archive has no such part.
func (o *ooxml) read(name string) ([]byte, error) {
	f, ok := o.parts[name]
	if !ok {
		return nil, nil
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrArchive, name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, o.budget+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrArchive, name, err)
	}
	if int64(len(b)) > o.budget {
		return nil, fmt.Errorf("%w: unpacks past %d bytes (a zip bomb?)", ErrTooLarge, o.limit)
	}
	o.budget -= int64(len(b))
	return b, nil
}

// docxToMarkdown turns a DOCX into Markdown: heading styles (and outline
// levels) become '#' headings, list paragraphs "- " lines, table rows cells
// joined by " | ", and footnotes a section at the end, so none are lost.
// The title is the document's Title style paragraph or core property title.
func docxToMarkdown(b []byte) (title, md string, err error) {
	return docxToMarkdownLimited(b, ooxmlMaxUnpacked)
}

// docxToMarkdownLimited is docxToMarkdown with an explicit unpacked-size
// limit (tests use a small one).
func docxToMarkdownLimited(b []byte, maxUnpacked int64) (title, md string, err error) {
	o, err := openOOXML(b, ".docx", maxUnpacked)
	if err != nil {
		return "", "", err
	}
	doc, err := o.read("word/document.xml")
	if err != nil {
		return "", "", err
	}
	if doc == nil {
		return "", "", fmt.Errorf("%w: not a .docx (no word/document.xml; a renamed archive of something else?)", ErrBinary)
	}
	styles, err := o.read("word/styles.xml")
	if err != nil {
		return "", "", err
	}
	levels := headingStyles(styles)
	// A document that uses a Title paragraph has its title as "#": its
	// headings move down one level so that they nest under it.
	for id, l := range levels {
		if l == -1 && bytes.Contains(doc, []byte(`w:pStyle w:val="`+id+`"`)) {
			for id2, l2 := range levels {
				if l2 > 0 {
					levels[id2] = min(l2+1, 6)
				}
			}
			break
		}
	}
	var out strings.Builder
	title, err = wordBody(doc, levels, &out)
	if err != nil {
		return "", "", err
	}
	if fn, err := o.read("word/footnotes.xml"); err != nil {
		return "", "", err
	} else if fn != nil {
		var notes strings.Builder
		if _, err := wordBody(fn, levels, &notes); err == nil && strings.TrimSpace(notes.String()) != "" {
			out.WriteString("\n## 脚注\n\n")
			out.WriteString(notes.String())
		}
	}
	if title == "" {
		if core, err := o.read("docProps/core.xml"); err == nil && core != nil {
			title = coreTitle(core)
		}
	}
	return title, out.String(), nil
}

// headingStyles maps paragraph style ids to heading levels (1-6) from
// styles.xml: styles named "heading N" / "标题 N", or with an outline level.
func headingStyles(styles []byte) map[string]int {
	levels := map[string]int{}
	if styles == nil {
		return levels
	}
	dec := xml.NewDecoder(bytes.NewReader(styles))
	id, level := "", 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return levels
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "style":
				id, level = attr(t, "styleId"), 0
			case "name":
				n := strings.ToLower(strings.TrimSpace(attr(t, "val")))
				for _, p := range []string{"heading ", "标题 ", "标题"} {
					if rest, ok := strings.CutPrefix(n, p); ok {
						if v, err := strconv.Atoi(strings.TrimSpace(rest)); err == nil && v >= 1 && v <= 6 {
							level = v
						}
					}
				}
				if n == "title" {
					level = -1 // the document title
				}
			case "outlineLvl":
				if v, err := strconv.Atoi(attr(t, "val")); err == nil && v >= 0 && v < 6 && level == 0 {
					level = v + 1
				}
			}
		case xml.EndElement:
			if t.Name.Local == "style" && id != "" && level != 0 {
				levels[id] = level
			}
		}
	}
}

// wordBody streams a WordprocessingML part (document or footnotes) into
// Markdown lines. It returns the text of a Title-style paragraph, if any.
func wordBody(part []byte, levels map[string]int, out *strings.Builder) (string, error) {
	dec := xml.NewDecoder(bytes.NewReader(part))
	var (
		title      string
		para       strings.Builder
		level      int  // heading level of the current paragraph
		list       bool // the current paragraph is a list item
		inText     bool
		depthTable int
		row        []string
		cell       strings.Builder
	)
	endPara := func() {
		text := strings.TrimSpace(para.String())
		para.Reset()
		switch {
		case text == "":
		case depthTable > 0:
			if cell.Len() > 0 {
				cell.WriteByte(' ')
			}
			cell.WriteString(text)
		case level == -1:
			if title == "" {
				title = text
			}
			fmt.Fprintf(out, "# %s\n\n", text)
		case level > 0:
			fmt.Fprintf(out, "%s %s\n\n", strings.Repeat("#", level), text)
		case list:
			fmt.Fprintf(out, "- %s\n", text)
		default:
			fmt.Fprintf(out, "%s\n\n", escapeMarkdownLine(text))
		}
		level, list = 0, false
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("%w: word XML: %v", ErrBinary, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "pStyle":
				level = levels[attr(t, "val")]
			case "outlineLvl":
				if v, err := strconv.Atoi(attr(t, "val")); err == nil && v >= 0 && v < 6 && level == 0 {
					level = v + 1
				}
			case "numPr":
				list = true
			case "t":
				inText = true
			case "tab":
				para.WriteByte(' ')
			case "br", "cr":
				para.WriteByte(' ')
			case "tbl":
				depthTable++
			case "tc":
				cell.Reset()
			case "tr":
				row = row[:0]
			}
		case xml.CharData:
			if inText {
				para.Write(t)
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "t":
				inText = false
			case "p":
				endPara()
			case "tc":
				row = append(row, strings.TrimSpace(cell.String()))
				cell.Reset()
			case "tr":
				if depthTable == 1 && strings.TrimSpace(strings.Join(row, "")) != "" {
					fmt.Fprintf(out, "%s\n", strings.Join(row, " | "))
				}
			case "tbl":
				depthTable--
				if depthTable == 0 {
					out.WriteByte('\n')
				}
			}
		}
	}
	return title, nil
}

// escapeMarkdownLine keeps a body line from being read as a Markdown heading.
func escapeMarkdownLine(s string) string {
	if strings.HasPrefix(s, "#") || strings.HasPrefix(s, "```") {
		return "\\" + s
	}
	return s
}

func coreTitle(core []byte) string {
	dec := xml.NewDecoder(bytes.NewReader(core))
	in := false
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		switch t := tok.(type) {
		case xml.StartElement:
			in = t.Name.Local == "title"
		case xml.CharData:
			if in {
				return strings.TrimSpace(string(t))
			}
		case xml.EndElement:
			in = false
		}
	}
}

func attr(t xml.StartElement, local string) string {
	for _, a := range t.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// docxInputs reads a DOCX file as one Markdown document.
func docxInputs(root, p string, b []byte) ([]Input, error) {
	title, md, err := docxToMarkdown(b)
	if err != nil {
		return nil, err
	}
	return markdownInput(root, p, title, md)
}

// markdownInput is the document of a file converted to Markdown. Without a
// title, Build takes the first "# " heading (or the document id).
func markdownInput(root, p, title, md string) ([]Input, error) {
	if strings.TrimSpace(md) == "" {
		return nil, ErrEmpty
	}
	in := Input{ID: docID(root, p), Title: title, Source: p, Format: Markdown, Content: md}
	if dir, _, ok := strings.Cut(in.ID, "/"); ok {
		in.Metadata = map[string]string{"folder": dir}
	}
	return []Input{in}, nil
}
