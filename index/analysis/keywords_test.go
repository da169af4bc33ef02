package analysis

import (
	"strings"
	"testing"
	"unsafe"

	"github.com/zhisou/zhisou/index"
)

// TestKeywordsOwnTheirMemory: a chunk's keywords live as long as its graph
// edges, so they must not hold the room made for every term of the chunk, nor
// the text their terms were cut from (a 20 MB ingest peaked 0.6 GB higher
// when they did).
func TestKeywordsOwnTheirMemory(t *testing.T) {
	an := testAnalyzer(t)
	text := strings.Repeat("用人单位应当按照劳动合同约定和国家规定，向劳动者及时足额支付劳动报酬。劳动者依法享有休息休假的权利，培训考核合格后上岗。", 8)
	var body []string
	for _, tk := range an.TokensIn(nil, text) {
		body = append(body, tk.Term)
	}
	kws := an.Keywords(body, nil)
	if len(kws) == 0 || len(kws) > index.MaxKeywords {
		t.Fatalf("%d keywords, want 1 to %d", len(kws), index.MaxKeywords)
	}
	if cap(kws) != len(kws) {
		t.Errorf("keywords: cap %d for %d", cap(kws), len(kws))
	}
	for _, k := range kws {
		for _, b := range body {
			if k.Term == b && unsafe.StringData(k.Term) == unsafe.StringData(b) {
				t.Errorf("keyword %q shares its bytes with the analysed text", k.Term)
			}
		}
	}
}
