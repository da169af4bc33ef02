package ingest

import (
	"os"
	"testing"
)

// BenchmarkPDF reads the LibreOffice lesson fixture (two pages, bookmarks,
// subset TrueType fonts with ToUnicode maps).
func BenchmarkPDF(b *testing.B) {
	data, err := os.ReadFile("testdata/libreoffice/02-price-objection.pdf")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, _, err := pdfToMarkdown(data); err != nil {
			b.Fatal(err)
		}
	}
}
