package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/ledongthuc/pdf"
)

// PDF limits. The parser decompresses streams lazily; pdfMaxUnpacked
// bounds what one file may unpack (content streams and ToUnicode maps, each
// measured before it is interpreted), so a Flate bomb is refused instead of
// filling memory. The page and outline limits also bound cyclic page trees
// and outlines, which the library would follow forever.
const (
	pdfMaxUnpacked = 256 << 20
	pdfMaxPages    = 10000
	pdfMaxOutline  = 10000
	pdfMaxDepth    = 32
	// pdfMaxObjects bounds the cross-reference table, which the library
	// allocates at the size the file declares (40 bytes an entry) before it
	// reads a single entry.
	pdfMaxObjects = 2_000_000
)

var (
	// ErrNoTextLayer means a PDF has pages but no extractable text: a scan,
	// or text in fonts without a Unicode map. OCR is not supported.
	ErrNoTextLayer = errors.New("no text layer (scanned?); OCR is not supported")
	// ErrEncrypted means a PDF needs a password (or uses an encryption the
	// reader does not support).
	ErrEncrypted = errors.New("encrypted PDF")
)

// pdfInputs reads a PDF as one Markdown document (see pdfToMarkdown).
func pdfInputs(root, p string, b []byte) ([]Input, error) {
	title, md, err := pdfToMarkdown(b)
	if err != nil {
		return nil, err
	}
	return markdownInput(root, p, title, md)
}

// pdfToMarkdown turns a PDF's text layer into Markdown. Headings come from
// the bookmarks (outline) when the file has them, each at its bookmark's
// depth, else from the short lines set larger than the body text (the
// largest size level 1); in both cases the lines that the Chinese numbering
// patterns make headings (第X章, 一、, 1.2 …) nest below, as in text. Every heading
// carries the pages its section spans, "（第3页）" or "（第3–4页）", so a hit
// can cite its page the way a slide's "第N页" heading does; a PDF with no
// headings at all gets one "## 第N页" section per page. Wrapped lines of a
// paragraph are joined; table cells on one line are joined by " | ".
// The title is the document information title, else the first bookmark,
// else the first heading.
func pdfToMarkdown(b []byte) (title, md string, err error) {
	return pdfToMarkdownLimited(b, pdfMaxUnpacked)
}

// pdfToMarkdownLimited is pdfToMarkdown with an explicit limit on unpacked
// stream bytes (tests use a small one).
func pdfToMarkdownLimited(b []byte, maxUnpacked int64) (title, md string, err error) {
	// The library reports malformed input by panicking; this turns any
	// panic into a per-file error.
	defer func() {
		if r := recover(); r != nil {
			title, md, err = "", "", fmt.Errorf("%w: malformed PDF (%v)", ErrBinary, r)
		}
	}()
	r, err := openPDF(b)
	if err != nil {
		return "", "", err
	}
	pages, err := pdfPageList(r)
	if err != nil {
		return "", "", err
	}
	if len(pages) == 0 {
		return "", "", fmt.Errorf("%w: a PDF without pages", ErrEmpty)
	}
	x := pdfExtractor{budget: maxUnpacked, limit: maxUnpacked, fonts: map[string]*pdfFont{}}
	var lines []pdfLine
	for i, pg := range pages {
		ls, err := x.pageLines(pg, i+1)
		if err != nil {
			return "", "", fmt.Errorf("page %d: %w", i+1, err)
		}
		lines = append(lines, ls...)
	}
	if len(lines) == 0 {
		if x.unmapped > 0 {
			return "", "", fmt.Errorf("%w: %d pages, whose %d glyphs are in fonts without a ToUnicode map (text that cannot be read as Unicode)", ErrNoTextLayer, len(pages), x.unmapped)
		}
		return "", "", fmt.Errorf("%w: %d pages, none with text", ErrNoTextLayer, len(pages))
	}
	body := bodySize(lines)
	lines = joinDisplayLines(lines, body)
	enc := r.Trailer().Key("Encrypt")
	aes := enc.Key("V").Int64() == 4 && enc.Key("CF").Key(enc.Key("StrF").Name()).Key("CFM").Name() == "AESV2"
	marks := pdfBookmarks(r, pages, aes)
	title = pdfString(r.Trailer().Key("Info").Key("Title"), aes)
	if title == "" && len(marks) > 0 {
		title = marks[0].title
	}
	heads := placeBookmarks(lines, marks)
	blocks := pdfBlocks(lines, heads, body)
	markHeadings(blocks, len(marks) > 0)
	if title == "" {
		for _, b := range blocks {
			if b.level > 0 || b.numbered {
				title = b.title()
				break
			}
		}
	}
	return title, renderPDF(blocks), nil
}

// aes256 finds the encryption dictionary of AES-256 (security handler
// revision 5 or 6), which the library cannot decrypt.
var aes256 = regexp.MustCompile(`/R\s*[56]\b|/V\s*5\b|/AESV3\b`)

// openPDF opens a PDF, naming encryption problems. PDF 2.0 files are read
// as 1.7 (the library checks the header only; the syntax is the same).
func openPDF(b []byte) (*pdf.Reader, error) {
	if !bytes.HasPrefix(b, []byte("%PDF-")) {
		return nil, fmt.Errorf("%w: not a PDF (no %%PDF- header)", ErrBinary)
	}
	if bytes.HasPrefix(b, []byte("%PDF-2.0")) {
		b = append([]byte("%PDF-1.7"), b[8:]...)
	}
	if err := checkXrefSizes(b); err != nil {
		return nil, err
	}
	r, err := pdf.NewReader(bytes.NewReader(b), int64(len(b)))
	switch {
	case err == nil:
		return r, nil
	case errors.Is(err, pdf.ErrInvalidPassword):
		return nil, fmt.Errorf("%w: it needs a password to open; save a copy without a password", ErrEncrypted)
	case bytes.Contains(b, []byte("/Encrypt")) && aes256.Match(b):
		return nil, fmt.Errorf("%w: AES-256 encryption, which the reader does not support (with or without a password); save a copy without a password", ErrEncrypted)
	case bytes.Contains(b, []byte("/Encrypt")) && strings.Contains(err.Error(), "encrypt"):
		return nil, fmt.Errorf("%w: %v; save a copy without a password", ErrEncrypted, err)
	default:
		return nil, fmt.Errorf("%w: not a readable PDF (%v)", ErrBinary, err)
	}
}

var (
	xrefSize    = regexp.MustCompile(`/Size\s+(\d+)`)
	xrefIndex   = regexp.MustCompile(`/Index\s*\[([\d\s]*)\]`)
	xrefWidths  = regexp.MustCompile(`/W\s*\[\s*(\d+)\s+(\d+)\s+(\d+)`)
	xrefSection = regexp.MustCompile(`^\s*(\d+)\s+(\d+)\s*$`)
)

// checkXrefSizes refuses a file whose cross-reference data declares more
// than pdfMaxObjects objects (a trailer or xref stream /Size, an /Index
// range, a classic table's subsection) or entry widths over 8 bytes: the
// library would allocate for them before reading, so a few bytes could ask
// for gigabytes. These are in the clear in the file (never in a compressed
// object stream), so the raw bytes are scanned.
func checkXrefSizes(b []byte) error {
	tooMany := func(n int64) error {
		return fmt.Errorf("%w: the cross-reference table declares %d objects, limit %d", ErrTooLarge, n, pdfMaxObjects)
	}
	num := func(s []byte) int64 {
		v, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil {
			return math.MaxInt64
		}
		return v
	}
	for _, m := range xrefSize.FindAllSubmatch(b, -1) {
		if n := num(m[1]); n > pdfMaxObjects {
			return tooMany(n)
		}
	}
	for _, m := range xrefIndex.FindAllSubmatch(b, -1) {
		f := bytes.Fields(m[1])
		for i := 0; i+1 < len(f); i += 2 {
			if n := num(f[i]) + num(f[i+1]); n < 0 || n > pdfMaxObjects || num(f[i]) > pdfMaxObjects {
				return tooMany(max(n, num(f[i])))
			}
		}
	}
	for _, m := range xrefWidths.FindAllSubmatch(b, -1) {
		for _, w := range m[1:] {
			if num(w) > 8 {
				return fmt.Errorf("%w: cross-reference stream entries of %s bytes", ErrBinary, w)
			}
		}
	}
	// Classic tables: "xref", then subsections "start count" each followed
	// by count 20-byte entries, up to "trailer".
	for off := 0; ; {
		i := bytes.Index(b[off:], []byte("xref"))
		if i < 0 {
			return nil
		}
		off += i + 4
		rest := b[off:]
		for lines := 0; len(rest) > 0 && lines < 1_000_000; lines++ {
			j := bytes.IndexAny(rest, "\r\n")
			line := rest
			if j >= 0 {
				line, rest = rest[:j], rest[j+1:]
			} else {
				rest = nil
			}
			if bytes.HasPrefix(bytes.TrimSpace(line), []byte("trailer")) {
				break
			}
			if m := xrefSection.FindSubmatch(line); m != nil {
				if n := num(m[1]) + num(m[2]); n < 0 || n > pdfMaxObjects || num(m[1]) > pdfMaxObjects {
					return tooMany(max(n, num(m[1])))
				}
			}
		}
	}
}

// pdfPage is a page dictionary with the resources it inherits.
type pdfPage struct {
	v, res pdf.Value
}

// pdfPageList walks the page tree in order, passing inherited resources
// down. It bounds depth and count itself: a cyclic tree must not hang.
func pdfPageList(r *pdf.Reader) ([]pdfPage, error) {
	var pages []pdfPage
	nodes := 0
	var walk func(v, res pdf.Value, depth int) error
	walk = func(v, res pdf.Value, depth int) error {
		nodes++
		if depth > pdfMaxDepth || nodes > 4*pdfMaxPages {
			return fmt.Errorf("%w: page tree deeper than %d or larger than %d nodes (cyclic?)", ErrBinary, pdfMaxDepth, 4*pdfMaxPages)
		}
		if rv := v.Key("Resources"); rv.Kind() == pdf.Dict {
			res = rv
		}
		kids := v.Key("Kids")
		if v.Key("Type").Name() == "Page" || kids.Kind() != pdf.Array {
			if len(pages) >= pdfMaxPages {
				return fmt.Errorf("%w: more than %d pages", ErrTooLarge, pdfMaxPages)
			}
			pages = append(pages, pdfPage{v, res})
			return nil
		}
		for i := 0; i < kids.Len(); i++ {
			if err := walk(kids.Index(i), res, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	root := r.Trailer().Key("Root").Key("Pages")
	if root.Kind() != pdf.Dict {
		return nil, fmt.Errorf("%w: no page tree", ErrBinary)
	}
	if err := walk(root, pdf.Value{}, 0); err != nil {
		return nil, err
	}
	return pages, nil
}

// pdfLine is one line of text on a page, in content order.
type pdfLine struct {
	page int
	y    float64 // baseline, in points from the bottom
	size float64 // font size, in points
	text string
}

// pdfFont is a font with its decoder and glyph widths.
type pdfFont struct {
	enc      pdf.TextEncoding
	unmapped bool // a CID font without a ToUnicode map: its codes are not text
	cid      bool // two-byte codes (Identity-H)
	first    int
	widths   []float64       // simple fonts, from FirstChar
	cidW     map[int]float64 // CID fonts, from /W
	dw       float64
}

type pdfExtractor struct {
	budget, limit int64
	fonts         map[string]*pdfFont // by the font dictionary's identity
	unmapped      int                 // glyphs dropped: no Unicode mapping
}

// take charges n unpacked bytes against the file's budget.
func (x *pdfExtractor) take(n int64) error {
	if n > x.budget {
		return fmt.Errorf("%w: streams unpack past %d bytes (a decompression bomb?)", ErrTooLarge, x.limit)
	}
	x.budget -= n
	return nil
}

// streamSize measures a stream (or array of streams) unpacked, reading at
// most the remaining budget plus one byte.
func (x *pdfExtractor) streamSize(v pdf.Value) (int64, error) {
	var total int64
	measure := func(s pdf.Value) error {
		if s.Kind() != pdf.Stream {
			return nil
		}
		rc := s.Reader()
		defer rc.Close()
		n, err := io.Copy(io.Discard, io.LimitReader(rc, x.budget-total+1))
		total += n
		if err != nil {
			return fmt.Errorf("%w: stream: %v", ErrBinary, err)
		}
		if total > x.budget {
			return fmt.Errorf("%w: streams unpack past %d bytes (a decompression bomb?)", ErrTooLarge, x.limit)
		}
		return nil
	}
	if v.Kind() == pdf.Array {
		for i := 0; i < v.Len() && i < 10000; i++ {
			if err := measure(v.Index(i)); err != nil {
				return 0, err
			}
		}
		return total, nil
	}
	return total, measure(v)
}

// font returns the decoder for a font dictionary, measuring its ToUnicode
// map against the budget before the library parses it.
func (x *pdfExtractor) font(v pdf.Value) (*pdfFont, error) {
	key := v.String()
	if f, ok := x.fonts[key]; ok {
		return f, nil
	}
	f := &pdfFont{dw: 1000}
	tu := v.Key("ToUnicode")
	if tu.Kind() == pdf.Stream {
		n, err := x.streamSize(tu)
		if err != nil {
			return nil, err
		}
		if err := x.take(n); err != nil {
			return nil, err
		}
	}
	lf := &pdf.Font{V: v}
	f.enc = lf.Encoder()
	if v.Key("Subtype").Name() == "Type0" {
		enc := v.Key("Encoding").Name()
		f.cid = enc == "Identity-H" || enc == "Identity-V" || tu.Kind() == pdf.Stream
		f.unmapped = tu.Kind() != pdf.Stream && enc != "UniGB-UCS2-H"
		d := v.Key("DescendantFonts").Index(0)
		if dw := d.Key("DW"); dw.Kind() == pdf.Integer || dw.Kind() == pdf.Real {
			f.dw = dw.Float64()
		}
		f.cidW = cidWidths(d.Key("W"))
	} else {
		f.first = int(v.Key("FirstChar").Int64())
		w := v.Key("Widths")
		for i := 0; i < w.Len() && i < 256; i++ {
			f.widths = append(f.widths, w.Index(i).Float64())
		}
	}
	x.fonts[key] = f
	return f, nil
}

// cidWidths reads a CID font's /W array: "c [w1 w2 …]" and "c1 c2 w".
func cidWidths(w pdf.Value) map[int]float64 {
	out := map[int]float64{}
	for i := 0; i+1 < w.Len() && len(out) < 65536; {
		c := int(w.Index(i).Int64())
		next := w.Index(i + 1)
		if next.Kind() == pdf.Array {
			for j := 0; j < next.Len() && j < 65536; j++ {
				out[c+j] = next.Index(j).Float64()
			}
			i += 2
			continue
		}
		if i+2 >= w.Len() {
			break
		}
		last, width := int(next.Int64()), w.Index(i+2).Float64()
		for k := c; k <= last && k-c < 65536; k++ {
			out[k] = width
		}
		i += 3
	}
	return out
}

// advance is a shown string's width in text space units per point of font
// size (glyph widths / 1000), with an estimate when the font has none.
func (f *pdfFont) advance(raw, text string) float64 {
	var w float64
	known := true
	if f.cid {
		for i := 0; i+1 < len(raw); i += 2 {
			c := int(raw[i])<<8 | int(raw[i+1])
			cw, ok := f.cidW[c]
			if !ok {
				cw = f.dw
			}
			w += cw
		}
	} else if len(f.widths) > 0 {
		for i := 0; i < len(raw); i++ {
			j := int(raw[i]) - f.first
			if j < 0 || j >= len(f.widths) {
				known = false
				break
			}
			w += f.widths[j]
		}
	} else {
		known = false
	}
	if known && w > 0 {
		return w / 1000
	}
	w = 0
	for _, r := range text {
		if isWide(r) {
			w++
		} else {
			w += 0.5
		}
	}
	return w
}

// matrix is a PDF transformation [a b c d e f].
type matrix [6]float64

var identity = matrix{1, 0, 0, 1, 0, 0}

func (m matrix) mul(n matrix) matrix {
	return matrix{
		m[0]*n[0] + m[1]*n[2], m[0]*n[1] + m[1]*n[3],
		m[2]*n[0] + m[3]*n[2], m[2]*n[1] + m[3]*n[3],
		m[4]*n[0] + m[5]*n[2] + n[4], m[4]*n[1] + m[5]*n[3] + n[5],
	}
}

func translate(tx, ty float64) matrix { return matrix{1, 0, 0, 1, tx, ty} }

// pdfItem is one shown string placed on the page.
type pdfItem struct {
	x, y, end, size float64
	text            string
}

// pageLines interprets a page's content stream: the text operators place
// each shown string; strings on one baseline form a line.
func (x *pdfExtractor) pageLines(pg pdfPage, page int) ([]pdfLine, error) {
	contents := pg.v.Key("Contents")
	n, err := x.streamSize(contents)
	if err != nil {
		return nil, err
	}
	if err := x.take(n); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	fontRes := pg.res.Key("Font")
	pageFonts := map[string]*pdfFont{}
	var (
		items       []pdfItem
		ctm         = identity
		stack       []matrix
		tm, tlm     = identity, identity
		tfs, tl, tc float64
		tw, th      = 0.0, 1.0
		cur         *pdfFont
		fontErr     error
	)
	show := func(raw string) {
		if cur == nil || raw == "" {
			return
		}
		text := cur.enc.Decode(raw)
		if cur.unmapped {
			x.unmapped += utf8.RuneCountInString(text)
			text = ""
		}
		text = strings.Map(func(r rune) rune {
			if r == utf8.RuneError || r == 0 || (unicode.IsControl(r) && r != '\t') {
				return -1
			}
			return r
		}, text)
		trm := tm.mul(ctm)
		size := tfs * math.Hypot(trm[2], trm[3])
		adv := cur.advance(raw, text)*tfs + tc*float64(utf8.RuneCountInString(text)) + tw*float64(strings.Count(text, " "))
		tm = translate(adv*th, 0).mul(tm)
		end := tm.mul(ctm)[4]
		if strings.TrimSpace(text) != "" || len(items) > 0 {
			items = append(items, pdfItem{x: trm[4], y: trm[5], end: end, size: size, text: text})
		}
	}
	num := func(v pdf.Value) float64 { return v.Float64() }
	pdf.Interpret(contents, func(stk *pdf.Stack, op string) {
		args := make([]pdf.Value, stk.Len())
		for i := len(args) - 1; i >= 0; i-- {
			args[i] = stk.Pop()
		}
		m6 := func() (matrix, bool) {
			if len(args) != 6 {
				return identity, false
			}
			var m matrix
			for i := range m {
				m[i] = num(args[i])
			}
			return m, true
		}
		switch op {
		case "q":
			if len(stack) < 1000 {
				stack = append(stack, ctm)
			}
		case "Q":
			if len(stack) > 0 {
				ctm, stack = stack[len(stack)-1], stack[:len(stack)-1]
			}
		case "cm":
			if m, ok := m6(); ok {
				ctm = m.mul(ctm)
			}
		case "BT":
			tm, tlm = identity, identity
		case "Tf":
			if len(args) == 2 {
				tfs = num(args[1])
				name := args[0].Name()
				f, ok := pageFonts[name]
				if !ok {
					// The library re-reads an object on every lookup, so each
					// font is resolved once per page.
					if fv := fontRes.Key(name); fv.Kind() == pdf.Dict {
						var err error
						if f, err = x.font(fv); err != nil {
							fontErr = err
							return
						}
					}
					pageFonts[name] = f
				}
				cur = f
			}
		case "TL":
			if len(args) == 1 {
				tl = num(args[0])
			}
		case "Tc":
			if len(args) == 1 {
				tc = num(args[0])
			}
		case "Tw":
			if len(args) == 1 {
				tw = num(args[0])
			}
		case "Tz":
			if len(args) == 1 {
				th = num(args[0]) / 100
			}
		case "Td", "TD":
			if len(args) == 2 {
				if op == "TD" {
					tl = -num(args[1])
				}
				tlm = translate(num(args[0]), num(args[1])).mul(tlm)
				tm = tlm
			}
		case "Tm":
			if m, ok := m6(); ok {
				tlm, tm = m, m
			}
		case "T*":
			tlm = translate(0, -tl).mul(tlm)
			tm = tlm
		case "Tj", "'", "\"":
			if len(args) == 0 {
				return
			}
			if op != "Tj" {
				tlm = translate(0, -tl).mul(tlm)
				tm = tlm
			}
			if op == "\"" && len(args) == 3 {
				tw, tc = num(args[0]), num(args[1])
			}
			show(args[len(args)-1].RawString())
		case "TJ":
			if len(args) != 1 {
				return
			}
			a := args[0]
			for i := 0; i < a.Len(); i++ {
				e := a.Index(i)
				if e.Kind() == pdf.String {
					show(e.RawString())
				} else {
					tm = translate(-num(e)/1000*tfs*th, 0).mul(tm)
				}
			}
		}
	})
	if fontErr != nil {
		return nil, fontErr
	}
	return joinItems(items, page), nil
}

// joinItems groups placed strings into lines: a new line starts where the
// baseline moves by more than 40% of the font size or the text jumps back
// left. Within a line a gap of over 0.45 em between strings is a table cell
// boundary (" | "; LibreOffice pads cells by 0.5 em), a gap over 0.15 em a
// space (LibreOffice spaces Chinese from Latin text by 0.2 em).
func joinItems(items []pdfItem, page int) []pdfLine {
	var out []pdfLine
	var cur strings.Builder
	var line pdfLine
	var prev pdfItem
	flush := func() {
		if t := strings.Join(strings.Fields(cur.String()), " "); t != "" {
			line.text = t
			out = append(out, line)
		}
		cur.Reset()
	}
	for i, it := range items {
		size := math.Max(it.size, 1)
		newLine := i == 0 || math.Abs(it.y-prev.y) > 0.4*math.Max(size, prev.size) || it.x < prev.x-2*size
		if newLine {
			flush()
			line = pdfLine{page: page, y: it.y, size: size}
		} else {
			gap := it.x - prev.end
			switch {
			case gap > 0.45*size && strings.TrimSpace(cur.String()) != "":
				cur.WriteString(" | ")
			case gap > 0.15*size:
				cur.WriteByte(' ')
			}
		}
		line.size = math.Max(line.size, size)
		cur.WriteString(it.text)
		prev = it
	}
	flush()
	return out
}

// pdfMark is a bookmark: its title, depth (1 = top) and page (0 unknown).
type pdfMark struct {
	title string
	level int
	page  int
}

// pdfBookmarks flattens the outline in reading order, bounded in depth and
// count (a cyclic outline stops there).
func pdfBookmarks(r *pdf.Reader, pages []pdfPage, aes bool) []pdfMark {
	root := r.Trailer().Key("Root")
	pageNum := map[string]int{}
	for i, p := range pages {
		if _, dup := pageNum[p.v.String()]; !dup {
			pageNum[p.v.String()] = i + 1
		}
	}
	var out []pdfMark
	visits := 0 // entries looked at, titled or not: a cycle of untitled entries ends too
	var walk func(v pdf.Value, level int)
	walk = func(v pdf.Value, level int) {
		for e := v.Key("First"); e.Kind() == pdf.Dict && visits < pdfMaxOutline; e = e.Key("Next") {
			if level > pdfMaxDepth {
				return
			}
			visits++
			title := pdfString(e.Key("Title"), aes)
			if title != "" {
				out = append(out, pdfMark{title: title, level: level, page: destPage(root, e, pageNum)})
			}
			walk(e, level+1)
		}
	}
	walk(root.Key("Outlines"), 1)
	return out
}

// pdfString decodes a text string (UTF-16 with a byte order mark, else
// PDFDocEncoding) on one line. In a file encrypted with AES the library
// leaves the cipher's padding on strings; it is removed here.
func pdfString(v pdf.Value, aes bool) string {
	raw := v.RawString()
	if n := len(raw); aes && n > 0 {
		if p := int(raw[n-1]); p >= 1 && p <= 16 && p <= n && strings.Count(raw[n-p:], raw[n-1:]) == p {
			raw = raw[:n-p]
		}
	}
	var s string
	if strings.HasPrefix(raw, "\xfe\xff") {
		u := make([]uint16, 0, len(raw)/2)
		for i := 2; i+1 < len(raw); i += 2 {
			u = append(u, uint16(raw[i])<<8|uint16(raw[i+1]))
		}
		s = string(utf16.Decode(u))
	} else {
		rs := make([]rune, len(raw))
		for i := 0; i < len(raw); i++ {
			rs[i] = rune(raw[i]) // PDFDocEncoding is Latin-1 but for a few symbols
		}
		s = string(rs)
	}
	return strings.Join(strings.Fields(s), " ")
}

// destPage is the page a bookmark points to: its /Dest or GoTo action's
// destination, an explicit array or a named destination.
func destPage(root, e pdf.Value, pageNum map[string]int) int {
	d := e.Key("Dest")
	if d.Kind() == pdf.Null {
		if a := e.Key("A"); a.Key("S").Name() == "GoTo" {
			d = a.Key("D")
		}
	}
	if d.Kind() == pdf.Name || d.Kind() == pdf.String {
		name := d.Name()
		if d.Kind() == pdf.String {
			name = d.RawString()
		}
		d = root.Key("Dests").Key(name)
		if d.Kind() == pdf.Null {
			budget := 10000
			d = lookupName(root.Key("Names").Key("Dests"), name, 0, &budget)
		}
		if d.Kind() == pdf.Dict {
			d = d.Key("D")
		}
	}
	if d.Kind() != pdf.Array || d.Len() == 0 {
		return 0
	}
	return pageNum[d.Index(0).String()]
}

// lookupName finds a key in a name tree, visiting at most *budget nodes
// (a cyclic tree ends there).
func lookupName(t pdf.Value, name string, depth int, budget *int) pdf.Value {
	if t.Kind() != pdf.Dict || depth > pdfMaxDepth || *budget <= 0 {
		return pdf.Value{}
	}
	*budget--
	names := t.Key("Names")
	for i := 0; i+1 < names.Len(); i += 2 {
		if names.Index(i).RawString() == name {
			return names.Index(i + 1)
		}
	}
	kids := t.Key("Kids")
	for i := 0; i < kids.Len() && *budget > 0; i++ {
		k := kids.Index(i)
		if lim := k.Key("Limits"); lim.Len() == 2 && (name < lim.Index(0).RawString() || name > lim.Index(1).RawString()) {
			continue
		}
		if v := lookupName(k, name, depth+1, budget); v.Kind() != pdf.Null {
			return v
		}
	}
	return pdf.Value{}
}

// pdfHead is a heading placed before line at (lines[at]); span counts the
// lines the heading's own text took (0 when it was not found in the text).
type pdfHead struct {
	at, span int
	level    int    // Markdown level; 0 for a numbering heading kept as text
	title    string // the heading's text
	page     int
}

func squash(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '|' {
			return -1
		}
		return r
	}, s)
}

// placeBookmarks finds each bookmark's line, in order: the line (or two, for
// a wrapped heading) on the bookmark's page whose text is the title. A
// bookmark whose text is not found is placed at the top of its page, or
// dropped when its page is unknown.
func placeBookmarks(lines []pdfLine, marks []pdfMark) []pdfHead {
	var heads []pdfHead
	cursor := 0
	for _, m := range marks {
		want := squash(m.title)
		found := -1
		span := 1
		for i := cursor; i < len(lines) && found < 0; i++ {
			if m.page > 0 && lines[i].page < m.page {
				continue
			}
			if m.page > 0 && lines[i].page > m.page+1 {
				break
			}
			got := squash(lines[i].text)
			switch {
			case got == want:
				found = i
			case i+1 < len(lines) && strings.HasPrefix(want, got) && got+squash(lines[i+1].text) == want:
				found, span = i, 2
			}
		}
		if found >= 0 {
			heads = append(heads, pdfHead{at: found, span: span, level: min(m.level, 6), title: m.title, page: lines[found].page})
			cursor = found + span
			continue
		}
		if m.page == 0 {
			continue
		}
		at := cursor
		for at < len(lines) && lines[at].page < m.page {
			at++
		}
		heads = append(heads, pdfHead{at: at, level: min(m.level, 6), title: m.title, page: m.page})
		cursor = at
	}
	return heads
}

// bodySize is the font size of most of the text (by characters).
func bodySize(lines []pdfLine) float64 {
	count := map[float64]int{}
	best, size := 0, 0.0
	for _, l := range lines {
		k := math.Round(l.size*2) / 2
		count[k] += utf8.RuneCountInString(l.text)
		if count[k] > best || (count[k] == best && k < size) {
			best, size = count[k], k
		}
	}
	return size
}

// isDisplay reports whether a line is set larger than the body text.
func isDisplay(l pdfLine, body float64) bool { return l.size > 1.15*body }

// joinDisplayLines joins the wrapped lines of a heading: consecutive lines
// set in one display size, a line apart, the first not ending a sentence.
func joinDisplayLines(lines []pdfLine, body float64) []pdfLine {
	var out []pdfLine
	for _, l := range lines {
		if n := len(out); n > 0 {
			p := &out[n-1]
			last, _ := utf8.DecodeLastRuneInString(p.text)
			if isDisplay(l, body) && math.Abs(p.size-l.size) < 0.5 && p.page == l.page &&
				math.Abs(p.y-l.y) <= 1.6*l.size && !strings.ContainsRune(sentenceEnd, last) {
				first, _ := utf8.DecodeRuneInString(l.text)
				if !isWide(last) && !isWide(first) {
					p.text += " "
				}
				p.text += l.text
				continue
			}
		}
		out = append(out, l)
	}
	return out
}

// pdfBlock is a heading or a paragraph (wrapped lines joined).
type pdfBlock struct {
	text      string
	page, end int // first and last page
	size      float64
	display   bool // every line set larger than the body text
	level     int  // a Markdown heading's level; 0 for text
	numbered  bool // a text line that the numbering patterns make a heading
}

// pdfBlocks turns lines into blocks: the bookmark headings where heads put
// them, and paragraphs of the lines between.
func pdfBlocks(lines []pdfLine, heads []pdfHead, body float64) []pdfBlock {
	var out []pdfBlock
	h := 0
	for i := 0; i < len(lines); {
		if h < len(heads) && heads[h].at == i {
			hd := heads[h]
			out = append(out, pdfBlock{text: hd.title, page: hd.page, end: hd.page, level: hd.level})
			h++
			i += hd.span
			continue
		}
		l := lines[i]
		text := l.text
		if t, ok := strings.CutPrefix(text, "•"); ok {
			text = "- " + strings.TrimSpace(t)
		}
		n := len(out)
		if n > 0 && out[n-1].level == 0 && i > 0 && (h == 0 || heads[h-1].at+heads[h-1].span <= i-1) && continues(lines[i-1], l, text, body) {
			b := &out[n-1]
			last, _ := utf8.DecodeLastRuneInString(b.text)
			first, _ := utf8.DecodeRuneInString(text)
			if !isWide(last) && !isWide(first) {
				b.text += " "
			}
			b.text += text
			b.end = l.page
			b.display = b.display && isDisplay(l, body)
		} else {
			out = append(out, pdfBlock{text: text, page: l.page, end: l.page, size: l.size, display: isDisplay(l, body)})
		}
		i++
	}
	for ; h < len(heads); h++ { // headings placed past the last line
		out = append(out, pdfBlock{text: heads[h].title, page: heads[h].page, end: heads[h].page, level: heads[h].level})
	}
	return out
}

// markHeadings marks the headings among the paragraphs: without bookmarks,
// the short display paragraphs (the largest size is level 1, the next level
// 2, …); always, the lines that the numbering patterns make headings as
// Build finds them in text (which stay text, with their pages appended).
func markHeadings(blocks []pdfBlock, bookmarks bool) {
	var sizes []float64
	short := func(b pdfBlock) bool {
		last, _ := utf8.DecodeLastRuneInString(b.text)
		return b.display && utf8.RuneCountInString(b.text) <= 60 && !strings.ContainsRune(sentenceEnd, last)
	}
	for _, b := range blocks {
		if k := math.Round(b.size*2) / 2; b.level == 0 && short(b) && !slices.Contains(sizes, k) {
			sizes = append(sizes, k)
		}
	}
	slices.Sort(sizes)
	slices.Reverse(sizes)
	for i := range blocks {
		b := &blocks[i]
		if b.level > 0 {
			continue
		}
		if !bookmarks && short(*b) {
			b.level = min(slices.Index(sizes, math.Round(b.size*2)/2)+1, 6)
			continue
		}
		b.numbered = isHeadingLine(b.text)
	}
}

func isHeadingLine(s string) bool {
	_, _, rest, ok := headingRank(s, Text)
	return ok && rest == ""
}

// renderPDF writes the blocks as Markdown. Each heading gets the pages of
// its section (up to the next heading); without headings, each page is a
// "## 第N页" section.
func renderPDF(blocks []pdfBlock) string {
	var b strings.Builder
	para := func(text string) { fmt.Fprintf(&b, "%s\n\n", escapeMarkdownLine(text)) }
	headings := 0
	for _, bl := range blocks {
		if bl.level > 0 || bl.numbered {
			headings++
		}
	}
	if headings == 0 {
		page := 0
		for _, bl := range blocks {
			if bl.page != page {
				page = bl.page
				fmt.Fprintf(&b, "## 第%d页\n\n", page)
			}
			para(bl.text)
		}
		return b.String()
	}
	for i, bl := range blocks {
		if bl.level == 0 && !bl.numbered {
			para(bl.text)
			continue
		}
		last := bl.end
		for _, next := range blocks[i+1:] {
			if next.level > 0 || next.numbered {
				break
			}
			last = max(last, next.end)
		}
		pages := fmt.Sprintf("（第%d页）", bl.page)
		if last > bl.page {
			pages = fmt.Sprintf("（第%d–%d页）", bl.page, last)
		}
		switch {
		case bl.level > 0:
			fmt.Fprintf(&b, "%s %s%s\n\n", strings.Repeat("#", bl.level), bl.title(), pages)
		case isHeadingLine(bl.text + pages):
			para(bl.text + pages)
		default:
			para(bl.text)
		}
	}
	return b.String()
}

func (b pdfBlock) title() string { return strings.Join(strings.Fields(b.text), " ") }

// continues reports whether line l (whose text, list bullet rewritten, is
// text) continues the paragraph of line prev: prev does not end a sentence,
// they are a line apart in one size, and l does not start a list item, a
// table row or a numbered heading.
func continues(prev, l pdfLine, text string, body float64) bool {
	last, _ := utf8.DecodeLastRuneInString(prev.text)
	if strings.ContainsRune(sentenceEnd+"：:", last) || strings.HasPrefix(text, "- ") || strings.Contains(text, " | ") || strings.Contains(prev.text, " | ") {
		return false
	}
	if math.Abs(prev.size-l.size) > 0.5 || isDisplay(prev, body) != isDisplay(l, body) {
		return false
	}
	if prev.page == l.page && math.Abs(prev.y-l.y) > 1.6*l.size {
		return false
	}
	if _, _, _, ok := headingRank(text, Text); ok {
		return false
	}
	if len(text) > 1 && text[0] >= '0' && text[0] <= '9' && strings.ContainsAny(text[:min(len(text), 4)], ".、") {
		return false // a numbered list item ("1. …")
	}
	return true
}
