package ingest

import (
	"bytes"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/charset"
)

// decodeHTML turns the bytes of an HTML file into UTF-8 text. Bytes that are
// valid UTF-8 (or start with a BOM) are read as such; otherwise the charset a
// <meta> tag declares in the first 1024 bytes wins, as in a browser, and
// without one Decode's GB18030 fallback applies. It returns the name of the
// encoding it decoded.
func decodeHTML(b []byte) (string, string, error) {
	if utf8.Valid(b) || bytes.IndexByte(b[:min(len(b), 8192)], 0) >= 0 {
		return Decode(b) // Decode handles BOMs and reports NUL bytes
	}
	enc, name := charset.Lookup(metaCharset(b[:min(len(b), 1024)]))
	switch name {
	case "", "gbk", "gb18030", "replacement", "utf-16le", "utf-16be", "x-user-defined":
		// No declaration, one that GB18030 (a superset of GBK and GB2312)
		// covers, or one that cannot be right for bytes with no BOM or NUL.
		return Decode(b)
	case "utf-8":
		// Declared UTF-8 with a few broken bytes: keep the rest, and let
		// checkText refuse the file if much of it is broken.
		return checkText(strings.ToValidUTF8(string(b), "\uFFFD"), name)
	}
	out, err := enc.NewDecoder().Bytes(b)
	if err != nil {
		return Decode(b)
	}
	return checkText(string(out), name)
}

// metaCharset returns the charset that a <meta charset> or a <meta
// http-equiv="Content-Type" content="...; charset=..."> declares, or "".
func metaCharset(head []byte) string {
	z := html.NewTokenizer(bytes.NewReader(head))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return ""
		case html.StartTagToken, html.SelfClosingTagToken:
			name, more := z.TagName()
			if string(name) != "meta" {
				continue
			}
			var content string
			for more {
				var k, v []byte
				k, v, more = z.TagAttr()
				switch string(k) {
				case "charset":
					return strings.TrimSpace(string(v))
				case "content":
					content = string(v)
				}
			}
			if _, after, ok := strings.Cut(strings.ToLower(content), "charset="); ok {
				cs, _, _ := strings.Cut(strings.Trim(after, `"' `), ";")
				return strings.Trim(cs, `"' `)
			}
		}
	}
}

// htmlToMarkdown keeps the main text of an HTML page as Markdown: h1–h6
// become '#' headings, paragraphs and other blocks become lines, list items
// "- item" lines and table rows their cells joined by " | ". Scripts, styles,
// navigation, headers, footers, asides, forms, SVG and hidden elements are
// dropped. The title is the <title>, or the first h1 without one.
//
// It reads the page with the tokenizer, not the tree builder, keeping an
// element stack of at most maxHTMLDepth entries: each token costs a bounded
// amount of work, so any page converts in linear time.
func htmlToMarkdown(src string) (title, markdown string) {
	c := htmlConv{}
	z := html.NewTokenizer(strings.NewReader(src))
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			// io.EOF: a strings.Reader has no other errors, and the buffer
			// has no limit.
			c.endAll()
			title = c.title
			if title == "" || utf8.RuneCountInString(title) > maxHeadingRunes {
				title = c.firstH1
			}
			return strings.ToValidUTF8(title, "\uFFFD"), strings.ToValidUTF8(c.out.String(), "\uFFFD")
		case html.TextToken:
			c.text(z.Text())
		case html.StartTagToken, html.SelfClosingTagToken:
			name, more := z.TagName()
			tag := string(name)
			hide := false
			for more {
				var k, v []byte
				k, v, more = z.TagAttr()
				hide = hide || hiddenAttr(string(k), string(v))
			}
			c.start(tag, hide, tt == html.SelfClosingTagToken)
		case html.EndTagToken:
			name, _ := z.TagName()
			c.end(string(name))
		}
	}
}

// maxHTMLDepth caps the element stack. Deeper elements are read as if they
// had no tag, which bounds the search for an end tag's element.
const maxHTMLDepth = 256

// maxHeadingRunes is the longest heading kept as a heading; a longer one (an
// <h1> left open over the page) is read as text.
const maxHeadingRunes = 120

// Element sets.
var (
	// dropTags are never text: their content is skipped.
	dropTags = setOf("script", "style", "noscript", "template", "nav", "header", "footer", "aside",
		"form", "svg", "math", "iframe", "noembed", "noframes", "object", "canvas", "button",
		"select", "textarea", "dialog")
	// voidTags have no end tag and are never pushed.
	voidTags = setOf("area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
		"param", "source", "track", "wbr")
	headingTags = setOf("h1", "h2", "h3", "h4", "h5", "h6")
	// An element's start closes an open element of the first set, unless one
	// of the second set is open inside it.
	liTags, listTags  = setOf("li"), setOf("ul", "ol", "menu", "table")
	defTags, dlTags   = setOf("dt", "dd"), setOf("dl", "table")
	trTags, tableTags = setOf("tr"), setOf("table")
	cellTags, rowTags = setOf("td", "th"), setOf("tr", "table")
	// blockTags break the line before and after them.
	blockTags = setOf("address", "article", "blockquote", "body", "caption", "center", "dd", "details",
		"dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure", "h1", "h2", "h3", "h4",
		"h5", "h6", "hgroup", "hr", "html", "legend", "li", "main", "menu", "ol", "p", "pre", "section",
		"summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul")
)

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// hiddenAttr reports whether an attribute hides its element.
func hiddenAttr(key, val string) bool {
	switch key {
	case "hidden":
		return true
	case "aria-hidden":
		return strings.EqualFold(strings.TrimSpace(val), "true")
	case "style":
		return strings.Contains(strings.ReplaceAll(strings.ToLower(val), " ", ""), "display:none")
	}
	return false
}

// htmlConv is the state of one conversion.
type htmlConv struct {
	out   strings.Builder // finished Markdown lines
	stack []openElem
	skip  int // open elements whose content is dropped
	pre   int // open <pre> elements
	// block is the text of the block being read; prefix goes before its first
	// line ("- ", "## "); heading is its level, 0 for none.
	block   textBuf
	prefix  string
	heading int
	// rows are the open table rows, innermost last.
	rows []*tableRow
	// titleBuf collects the <title> while one is open.
	inTitle        bool
	titleBuf       textBuf
	title, firstH1 string
}

type openElem struct {
	name string
	// active: opened while no dropped element was open, so its end has effects.
	active bool
	drop   bool
}

type tableRow struct {
	cells []string
	cell  *textBuf // the open cell, or nil
}

// textBuf collects text with HTML's whitespace collapsed: a run of spaces is
// one space, except that a line break between two CJK characters is nothing
// (source line wrapping inside a Chinese sentence). Newlines come only from
// newline.
type textBuf struct {
	b       strings.Builder
	last    rune // last rune written, 0 at a line start
	space   bool // a space is pending
	newline bool // the pending space held a line break
	raw     bool // <pre>: keep whitespace as it is
}

func (t *textBuf) write(s []byte) {
	for len(s) > 0 {
		r, size := utf8.DecodeRune(s)
		s = s[size:]
		if r == 0 {
			continue
		}
		if t.raw {
			t.b.WriteRune(r)
			t.last = r
			continue
		}
		if unicode.IsSpace(r) {
			t.space = true
			t.newline = t.newline || r == '\n'
			continue
		}
		if t.space && t.last != 0 && !(t.newline && isWide(t.last) && isWide(r)) {
			t.b.WriteByte(' ')
		}
		t.space, t.newline = false, false
		t.b.WriteRune(r)
		t.last = r
	}
}

// lineBreak starts a new line (a <br>).
func (t *textBuf) lineBreak() {
	t.b.WriteByte('\n')
	t.last, t.space, t.newline = 0, false, false
}

// take returns the text and empties the buffer.
func (t *textBuf) take() string {
	s := t.b.String()
	t.b.Reset()
	t.last, t.space, t.newline = 0, false, false
	return s
}

// isWide reports whether r is a CJK character or full-width punctuation,
// which Chinese text runs together without spaces.
func isWide(r rune) bool {
	return (r >= 0x2E80 && r <= 0x9FFF) || (r >= 0xF900 && r <= 0xFAFF) ||
		(r >= 0xFE30 && r <= 0xFE4F) || (r >= 0xFF00 && r <= 0xFFEF) || (r >= 0x20000 && r <= 0x3FFFF)
}

// target is where text goes: the open table cell, the title, or the block.
func (c *htmlConv) target() *textBuf {
	if c.inTitle {
		return &c.titleBuf
	}
	if n := len(c.rows); n > 0 && c.rows[n-1].cell != nil {
		return c.rows[n-1].cell
	}
	return &c.block
}

func (c *htmlConv) inCell() bool {
	n := len(c.rows)
	return n > 0 && c.rows[n-1].cell != nil
}

func (c *htmlConv) text(s []byte) {
	if c.skip > 0 {
		return
	}
	c.target().write(s)
}

// flush ends the current block: its lines go out, the first with the prefix.
func (c *htmlConv) flush() {
	if c.inCell() {
		c.target().write([]byte(" ")) // blocks inside a cell are separated by a space
		return
	}
	text := c.block.take()
	first := true
	for line := range strings.SplitSeq(text, "\n") {
		if c.pre == 0 {
			line = strings.TrimSpace(line)
		} else {
			line = strings.TrimRight(line, " \t\r")
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if c.heading > 0 {
			// A heading is one line, whatever <br> it held.
			line = strings.Join(strings.Fields(text), " ")
			if utf8.RuneCountInString(line) > maxHeadingRunes {
				c.emit(line, false)
				break
			}
			if c.heading == 1 && c.firstH1 == "" {
				c.firstH1 = line
			}
			c.emit(c.prefix+line, true)
			break
		}
		if first {
			c.emit(c.prefix+line, c.prefix != "")
			first = false
		} else {
			c.emit(line, false)
		}
	}
	if !first || c.heading > 0 && strings.TrimSpace(text) != "" {
		c.prefix, c.heading = "", 0
	}
}

// emit writes one Markdown line. Text that would read as Markdown structure
// (a '#' heading, a code fence) is escaped unless it is that structure.
func (c *htmlConv) emit(line string, structural bool) {
	if !structural && (strings.HasPrefix(line, "```") || c.pre == 0 && strings.HasPrefix(line, "#")) {
		c.out.WriteByte('\\')
	}
	c.out.WriteString(line)
	c.out.WriteByte('\n')
}

func (c *htmlConv) start(tag string, hide, selfClosing bool) {
	if voidTags[tag] {
		if c.skip == 0 {
			c.void(tag)
		}
		return
	}
	// Elements that an open sibling's start closes, as the HTML parser does.
	switch tag {
	case "li":
		c.closeOpen(liTags, listTags)
	case "dt", "dd":
		c.closeOpen(defTags, dlTags)
	case "tr":
		c.closeOpen(trTags, tableTags)
	case "td", "th":
		c.closeOpen(cellTags, rowTags)
	case "h1", "h2", "h3", "h4", "h5", "h6":
		if n := len(c.stack); n > 0 && headingTags[c.stack[n-1].name] {
			c.pop()
		}
	}
	if blockTags[tag] && len(c.stack) > 0 && c.stack[len(c.stack)-1].name == "p" {
		c.pop()
	}
	if selfClosing || len(c.stack) >= maxHTMLDepth {
		// <div/> or too deep: its boundaries count, its content is not tracked.
		if c.skip == 0 && !dropTags[tag] && !hide {
			c.opened(tag)
			c.closed(tag)
		}
		return
	}
	e := openElem{name: tag, active: c.skip == 0, drop: dropTags[tag] || hide}
	c.stack = append(c.stack, e)
	if e.drop {
		c.skip++
		return
	}
	if e.active {
		c.opened(tag)
	}
}

// closeOpen closes the innermost open element named in names, with
// everything inside it, unless an element named in stop comes first.
func (c *htmlConv) closeOpen(names, stop map[string]bool) {
	for i := len(c.stack) - 1; i >= 0; i-- {
		switch n := c.stack[i].name; {
		case names[n]:
			for len(c.stack) > i {
				c.pop()
			}
			return
		case stop[n]:
			return
		}
	}
}

func (c *htmlConv) end(tag string) {
	for i := len(c.stack) - 1; i >= 0; i-- {
		if c.stack[i].name == tag {
			for len(c.stack) > i {
				c.pop()
			}
			return
		}
	}
	// An end tag with no open element: </br> and </p> still break the line.
	if c.skip == 0 && (tag == "br" || tag == "p") {
		c.void(tag)
	}
}

// endAll closes what the page left open.
func (c *htmlConv) endAll() {
	for len(c.stack) > 0 {
		c.pop()
	}
	c.flush()
}

func (c *htmlConv) pop() {
	e := c.stack[len(c.stack)-1]
	c.stack = c.stack[:len(c.stack)-1]
	if e.drop {
		c.skip--
	}
	if e.active && !e.drop {
		c.closed(e.name)
	}
}

// void handles an element that has no content.
func (c *htmlConv) void(tag string) {
	switch {
	case tag == "br":
		if t := c.target(); t == &c.block {
			t.lineBreak()
		} else {
			t.write([]byte(" "))
		}
	case blockTags[tag] || tag == "p":
		c.flush()
	}
}

// opened applies the effect of an element's start.
func (c *htmlConv) opened(tag string) {
	switch tag {
	case "title":
		if c.title == "" {
			c.inTitle = true
		}
		return
	case "tr":
		if !c.inCell() {
			c.flush()
		}
		c.rows = append(c.rows, &tableRow{})
		return
	case "td", "th":
		if n := len(c.rows); n > 0 && c.rows[n-1].cell == nil {
			c.rows[n-1].cell = &textBuf{}
			return
		}
	}
	if !blockTags[tag] {
		return
	}
	c.flush()
	if c.inCell() {
		return
	}
	switch tag {
	case "li":
		c.prefix = "- "
	case "h1", "h2", "h3", "h4", "h5", "h6":
		c.heading = int(tag[1] - '0')
		c.prefix = strings.Repeat("#", c.heading) + " "
	case "pre":
		c.emit("```", true)
		c.pre++
		c.block.raw = true
	}
}

// closed applies the effect of an element's end.
func (c *htmlConv) closed(tag string) {
	switch tag {
	case "title":
		if c.inTitle {
			c.inTitle = false
			c.title = strings.Join(strings.Fields(c.titleBuf.take()), " ")
		}
		return
	case "tr":
		if n := len(c.rows); n > 0 {
			row := c.rows[n-1]
			c.rows = c.rows[:n-1]
			c.endCell(row)
			line := strings.Join(row.cells, " | ")
			if strings.Trim(line, " |") == "" {
				return
			}
			if c.inCell() {
				c.target().write([]byte(" " + line + " "))
				return
			}
			c.flush()
			c.emit(line, false)
		}
		return
	case "td", "th":
		if n := len(c.rows); n > 0 && c.rows[n-1].cell != nil {
			c.endCell(c.rows[n-1])
			return
		}
	}
	if !blockTags[tag] {
		return
	}
	if tag == "pre" && c.pre > 0 && !c.inCell() {
		c.flush()
		c.pre--
		c.block.raw = c.pre > 0
		c.emit("```", true)
		return
	}
	c.flush()
	if tag == "li" || headingTags[tag] {
		c.prefix, c.heading = "", 0 // an empty item or heading
	}
}

func (c *htmlConv) endCell(row *tableRow) {
	if row.cell != nil {
		row.cells = append(row.cells, strings.Join(strings.Fields(row.cell.take()), " "))
		row.cell = nil
	}
}
