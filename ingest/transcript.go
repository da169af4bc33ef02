package ingest

import (
	"html"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A transcript is read into turns: one speaker's uninterrupted stretch of
// speech. Its content, for Build, is one turn per line, "说话人：内容", so that
// the speaker stays searchable; a turn with no known speaker is its text alone.

// turn is one speaker's uninterrupted speech. Speaker and Text are one line
// each, trimmed; Speaker may be empty.
type turn struct {
	Speaker, Text string
}

const (
	// maxLabelRunes is the longest speaker label at the start of a line
	// ("讲师：", "张经理：", "Q："), in runes.
	maxLabelRunes = 10
	// maxVoiceRunes is the longest speaker name a WebVTT <v> tag may give; a
	// longer one is ignored. Build recognises labels up to this length.
	maxVoiceRunes = 20
	// transcriptShare is the share (in tenths) of a .txt file's non-empty
	// lines that must start with a speaker label for it to be a transcript.
	transcriptShare = 6
)

var (
	// leadingTime is a timestamp before a speaker label: "[00:01:02] 张经理：".
	leadingTime = regexp.MustCompile(`^[\[(（【]?\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,3})?[\])）】]?\s*`)
	// voiceTag is a WebVTT voice span: <v 讲师> or <v.loud 讲师>.
	voiceTag = regexp.MustCompile(`<v(?:\.[^\s>]*)?[ \t]+([^>]*)>`)
	// cueTag is any other cue markup: <i>, </b>, <c.yellow>, <00:00:01.000>,
	// <font color="red">, and SSA overrides such as {\an8}.
	cueTag = regexp.MustCompile(`<[^>]*>|\{\\[^}]*\}`)
)

// labelStop holds the characters a speaker label cannot contain: a line with
// them before its colon is a sentence, not a turn.
const labelStop = "，,。！？；!?;、\"“”‘’《》<>[]【】{}/\\|=+*#@&%$^~`"

// speakerLabel splits a line that starts with a speaker label — 1 to
// maxRunes characters with a letter among them, then '：' or ':' — into the
// speaker and the rest. A timestamp before the label is dropped.
func speakerLabel(line string, maxRunes int) (speaker, rest string, ok bool) {
	s := strings.TrimSpace(line)
	if loc := leadingTime.FindStringIndex(s); loc != nil {
		s = s[loc[1]:]
	}
	n, spaces, letter := 0, 0, false
	for i, r := range s {
		switch {
		case r == '：' || r == ':':
			label := strings.TrimSpace(s[:i])
			rest := strings.TrimSpace(s[i+utf8.RuneLen(r):])
			if label == "" || !letter || strings.HasPrefix(rest, "//") {
				return "", "", false
			}
			return label, rest, true
		case n >= maxRunes:
			return "", "", false
		case unicode.IsSpace(r):
			if i == 0 {
				return "", "", false
			}
			if spaces++; spaces > 2 {
				return "", "", false
			}
		case strings.ContainsRune(labelStop, r) || unicode.IsControl(r):
			return "", "", false
		case unicode.IsLetter(r):
			letter = true
		}
		n++
	}
	return "", "", false
}

// parseTranscript reads a plain-text transcript: at least 60% of its
// non-empty lines start with a speaker label, and some speaker has two
// turns or more (so that a form of "姓名：…\n电话：…" fields is not a
// dialogue). A first line without a label that looks like a title is the
// title; other lines without a label continue the turn before them. ok is
// false when the text is not a transcript.
func parseTranscript(src string) (title string, turns []turn, ok bool) {
	var lines []string
	src = strings.ReplaceAll(strings.ToValidUTF8(src, "\uFFFD"), "\r", "\n")
	for l := range strings.Lines(src) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	labelled := 0
	count := map[string]int{}
	repeated := false
	for _, l := range lines {
		if sp, _, ok := speakerLabel(l, maxLabelRunes); ok {
			labelled++
			count[sp]++
			repeated = repeated || count[sp] > 1
		}
	}
	if labelled == 0 || labelled*10 < transcriptShare*len(lines) || !repeated {
		return "", nil, false
	}
	if _, _, ok := speakerLabel(lines[0], maxLabelRunes); !ok && isShortTitle(lines[0]) {
		title, lines = lines[0], lines[1:]
	}
	var tb turnBuilder
	for _, l := range lines {
		if sp, rest, ok := speakerLabel(l, maxLabelRunes); ok {
			tb.add(sp, rest, true)
			continue
		}
		if loc := leadingTime.FindStringIndex(l); loc != nil {
			l = l[loc[1]:]
		}
		tb.add("", l, false)
	}
	return title, tb.turns, len(tb.turns) > 0
}

// parseSubtitles reads SubRip (.srt) or WebVTT (.vtt) subtitles into turns:
// cue numbers and identifiers, timings, the WEBVTT header, NOTE, STYLE and
// REGION blocks, and markup are dropped. A cue's speaker comes from a <v
// Name> span or a leading "Name：" label; a cue without one continues the
// speaker before it, and consecutive cues of one speaker make one turn. The
// title is the text after "WEBVTT" on the header line, if any.
func parseSubtitles(src string) (title string, turns []turn) {
	src = strings.ToValidUTF8(src, "\uFFFD")
	src = strings.ReplaceAll(strings.ReplaceAll(src, "\r\n", "\n"), "\r", "\n")
	var tb turnBuilder
	first := true
	for block := range strings.SplitSeq(src, "\n\n") {
		lines := strings.Split(strings.Trim(block, "\n"), "\n")
		head := strings.TrimSpace(lines[0])
		if head == "" {
			continue
		}
		if first {
			first = false
			if rest, ok := strings.CutPrefix(head, "WEBVTT"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
				if t := strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(rest), "-–—")); isShortTitle(t) {
					title = t
				}
				continue
			}
		}
		if kw, _, _ := strings.Cut(head, " "); kw == "NOTE" || kw == "STYLE" || kw == "REGION" {
			if !strings.Contains(block, "-->") {
				continue
			}
		}
		// Text is what follows the timing line; a block without one (a
		// blank line inside a cue's text) is all text, except a lone number.
		text := lines
		for i, l := range lines {
			if strings.Contains(l, "-->") {
				text = lines[i+1:]
				break
			}
		}
		if len(text) == len(lines) && len(lines) == 1 && isDigits(head) {
			continue
		}
		for _, l := range text {
			speaker, hasSpeaker := "", false
			if m := voiceTag.FindStringSubmatch(l); m != nil {
				if name := strings.Join(strings.Fields(html.UnescapeString(cueTag.ReplaceAllString(m[1], ""))), " "); name != "" && utf8.RuneCountInString(name) <= maxVoiceRunes {
					speaker, hasSpeaker = strings.ReplaceAll(name, ",", "，"), true
				}
			}
			l = strings.TrimSpace(html.UnescapeString(cueTag.ReplaceAllString(l, "")))
			if l == "" {
				continue
			}
			if sp, rest, ok := speakerLabel(l, maxLabelRunes); ok && (!hasSpeaker || sp == speaker) {
				speaker, l, hasSpeaker = sp, rest, true
			}
			tb.add(speaker, l, hasSpeaker)
		}
	}
	return title, tb.turns
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// turnBuilder merges lines into turns.
type turnBuilder struct {
	turns []turn
}

// add appends text said by speaker. Without hasSpeaker the text continues
// the last turn; text by the last turn's speaker is merged into it.
func (b *turnBuilder) add(speaker, text string, hasSpeaker bool) {
	text = strings.Join(strings.Fields(text), " ")
	speaker = strings.Join(strings.Fields(speaker), " ")
	n := len(b.turns)
	if n > 0 && (!hasSpeaker || b.turns[n-1].Speaker == speaker) {
		if text != "" {
			b.turns[n-1].Text = joinText(b.turns[n-1].Text, text)
		}
		return
	}
	if text == "" && speaker == "" {
		return
	}
	b.turns = append(b.turns, turn{Speaker: speaker, Text: text})
}

// joinText joins two pieces of one turn: with no space between CJK text
// (a subtitle line break inside a Chinese sentence), with one otherwise.
func joinText(a, b string) string {
	if a == "" {
		return b
	}
	last, _ := utf8.DecodeLastRuneInString(a)
	next, _ := utf8.DecodeRuneInString(b)
	if isWide(last) || isWide(next) {
		return a + b
	}
	return a + " " + b
}

// formatTurns writes turns as transcript content, one "说话人：内容" line
// each. A turn without text (a label alone) is left out.
func formatTurns(turns []turn) string {
	var b strings.Builder
	for _, t := range turns {
		if t.Text == "" {
			continue
		}
		if t.Speaker != "" {
			b.WriteString(t.Speaker)
			b.WriteString("：")
		}
		b.WriteString(t.Text)
		b.WriteByte('\n')
	}
	return b.String()
}

// speakers lists the distinct speakers of turns with text, in order of first
// appearance.
func speakers(turns []turn) []string {
	var out []string
	seen := map[string]bool{}
	for _, t := range turns {
		if t.Speaker != "" && t.Text != "" && !seen[t.Speaker] {
			seen[t.Speaker] = true
			out = append(out, t.Speaker)
		}
	}
	return out
}

// cutTurns packs a transcript's turns (one per line) into chunks of whole
// turns up to opts.Target runes. A turn is never split, except one longer
// than opts.Max: it is cut at sentence ends, each piece keeping the
// speaker's label.
func cutTurns(lines []string, opts ChunkOptions) []string {
	var chunks []string
	var cur strings.Builder
	w := 0 // runes in cur, newlines included
	emit := func() {
		if w > 0 {
			chunks = append(chunks, cur.String())
		}
		cur.Reset()
		w = 0
	}
	for _, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		m := utf8.RuneCountInString(line)
		if m > opts.Max {
			emit()
			chunks = append(chunks, splitTurn(line, opts)...)
			continue
		}
		if w > 0 && w+1+m > opts.Target {
			emit()
		}
		if w > 0 {
			cur.WriteByte('\n')
			w++
		}
		cur.WriteString(line)
		w += m
	}
	emit()
	return chunks
}

// splitTurn cuts a turn longer than opts.Max at sentence ends, repeating its
// speaker label at the start of each piece. When the label would take half
// of a piece, the pieces go without it.
func splitTurn(line string, opts ChunkOptions) []string {
	speaker, rest, ok := speakerLabel(line, maxVoiceRunes)
	prefix := speaker + "："
	p := utf8.RuneCountInString(prefix)
	if !ok || rest == "" || 2*p > opts.Max {
		return cutChunks([]string{line}, opts)
	}
	pieces := cutChunks([]string{rest}, ChunkOptions{Target: max(1, opts.Target-p), Max: opts.Max - p})
	for i := range pieces {
		pieces[i] = prefix + pieces[i]
	}
	return pieces
}
