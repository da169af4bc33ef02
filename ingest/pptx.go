package ingest

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	zpath "path"
	"strings"
)

// pptxToMarkdown turns a slide deck into Markdown: each slide is a "##"
// section titled "第N页 <title>" (the slide number kept for citations), with
// its body text, table rows (cells joined by " | ") and speaker notes. The deck
// title is the first slide's title.
func pptxToMarkdown(b []byte) (title, md string, err error) {
	return pptxToMarkdownLimited(b, ooxmlMaxUnpacked)
}

// pptxToMarkdownLimited is pptxToMarkdown with an explicit unpacked-size limit.
func pptxToMarkdownLimited(b []byte, maxUnpacked int64) (title, md string, err error) {
	o, err := openOOXML(b, ".pptx", maxUnpacked)
	if err != nil {
		return "", "", err
	}
	slides, err := slideOrder(o)
	if err != nil {
		return "", "", err
	}
	if len(slides) == 0 {
		return "", "", fmt.Errorf("%w: not a .pptx (no slides in ppt/presentation.xml; a renamed archive of something else?)", ErrBinary)
	}
	var out strings.Builder
	for i, sp := range slides {
		x, err := o.read(sp)
		if err != nil {
			return "", "", err
		}
		if x == nil {
			return "", "", fmt.Errorf("%w: slide %d: missing part %s (a truncated file?)", ErrArchive, i+1, sp)
		}
		s, err := readSlide(x)
		if err != nil {
			return "", "", fmt.Errorf("slide %d: %w", i+1, err)
		}
		if title == "" {
			title = s.title
		}
		fmt.Fprintf(&out, "## 第%d页 %s\n\n", i+1, s.title)
		for _, l := range s.lines {
			fmt.Fprintf(&out, "%s\n", escapeMarkdownLine(l))
		}
		if notes, err := slideNotes(o, sp); err != nil {
			return "", "", err
		} else if notes != "" {
			fmt.Fprintf(&out, "\n讲者备注：%s\n", notes)
		}
		out.WriteByte('\n')
	}
	return title, out.String(), nil
}

// slideOrder lists the slide parts in presentation order.
func slideOrder(o *ooxml) ([]string, error) {
	pres, err := o.read("ppt/presentation.xml")
	if err != nil || pres == nil {
		return nil, err
	}
	rels, err := o.read("ppt/_rels/presentation.xml.rels")
	if err != nil {
		return nil, err
	}
	targets := relTargets(rels, "ppt")
	var parts []string
	dec := xml.NewDecoder(bytes.NewReader(pres))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return parts, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: presentation XML: %v", ErrBinary, err)
		}
		if t, ok := tok.(xml.StartElement); ok && t.Name.Local == "sldId" {
			// sldId has both id and r:id; the relationship id is the
			// namespaced one.
			for _, a := range t.Attr {
				if a.Name.Local == "id" && a.Name.Space != "" {
					if p, ok := targets[a.Value]; ok {
						parts = append(parts, p)
					}
				}
			}
		}
	}
}

// relTargets maps relationship ids to part names, resolved against dir.
func relTargets(rels []byte, dir string) map[string]string {
	out := map[string]string{}
	if rels == nil {
		return out
	}
	dec := xml.NewDecoder(bytes.NewReader(rels))
	for {
		tok, err := dec.Token()
		if err != nil {
			return out
		}
		if t, ok := tok.(xml.StartElement); ok && t.Name.Local == "Relationship" {
			target := attr(t, "Target")
			if strings.HasPrefix(target, "/") {
				out[attr(t, "Id")] = strings.TrimPrefix(target, "/")
			} else {
				out[attr(t, "Id")] = zpath.Clean(zpath.Join(dir, target))
			}
		}
	}
}

// slideNotes returns a slide's speaker notes, following the slide's
// relationship to its notes part.
func slideNotes(o *ooxml, slidePart string) (string, error) {
	dir, file := zpath.Split(slidePart)
	rels, err := o.read(dir + "_rels/" + file + ".rels")
	if err != nil || rels == nil {
		return "", err
	}
	for _, target := range relTargets(rels, strings.TrimSuffix(dir, "/")) {
		if !strings.Contains(target, "notesSlide") {
			continue
		}
		x, err := o.read(target)
		if err != nil || x == nil {
			return "", err
		}
		s, err := readSlide(x)
		if err != nil {
			return "", err
		}
		// A notes page repeats the slide image and number; its body text is
		// the notes.
		return strings.Join(s.lines, " "), nil
	}
	return "", nil
}

type slide struct {
	title string
	lines []string
}

// readSlide reads a slide (or notes page): the title placeholder's text, and
// every other shape's paragraphs and table rows in order.
func readSlide(x []byte) (slide, error) {
	var s slide
	dec := xml.NewDecoder(bytes.NewReader(x))
	var (
		para      strings.Builder
		inText    bool
		isTitle   bool // inside a title placeholder's shape
		skip      bool // a placeholder that is not content (slide number, date, footer)
		shapeText []string
		depthTbl  int
		row       []string
		cell      strings.Builder
	)
	endShape := func() {
		switch {
		case skip:
		case isTitle && s.title == "":
			s.title = strings.Join(shapeText, " ")
		default:
			s.lines = append(s.lines, shapeText...)
		}
		shapeText, isTitle, skip = nil, false, false
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return s, fmt.Errorf("%w: slide XML: %v", ErrBinary, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "ph":
				switch attr(t, "type") {
				case "title", "ctrTitle":
					isTitle = true
				case "sldNum", "dt", "ftr", "sldImg", "hdr":
					skip = true
				}
			case "t":
				inText = true
			case "br":
				para.WriteByte(' ')
			case "tbl":
				depthTbl++
			case "tr":
				row = row[:0]
			case "tc":
				cell.Reset()
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
				text := strings.TrimSpace(para.String())
				para.Reset()
				if text == "" {
					break
				}
				if depthTbl > 0 {
					if cell.Len() > 0 {
						cell.WriteByte(' ')
					}
					cell.WriteString(text)
				} else {
					shapeText = append(shapeText, text)
				}
			case "tc":
				row = append(row, strings.TrimSpace(cell.String()))
			case "tr":
				if strings.TrimSpace(strings.Join(row, "")) != "" {
					shapeText = append(shapeText, strings.Join(row, " | "))
				}
			case "tbl":
				depthTbl--
			case "sp", "graphicFrame":
				endShape()
			}
		}
	}
	endShape()
	return s, nil
}

// pptxInputs reads a slide deck as one Markdown document.
func pptxInputs(root, p string, b []byte) ([]Input, error) {
	title, md, err := pptxToMarkdown(b)
	if err != nil {
		return nil, err
	}
	return markdownInput(root, p, title, md)
}
