package ingest

import (
	"fmt"
	"os"
	"testing"
)

func TestProbeMD(t *testing.T) {
	b, _ := os.ReadFile(os.Getenv("F"))
	title, md, err := pdfToMarkdown(b)
	fmt.Println(title, err)
	fmt.Println(md)
}
