package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/indextest"
	"github.com/zhisou/zhisou/index/store"
	"github.com/zhisou/zhisou/ingest"
	"github.com/zhisou/zhisou/retrieve"
)

// TestThousandRowBank ingests a generated 1 000-row question bank and checks
// that every row is the top hit for a phrase from its own stem (the issue's
// target); the stems share words pairwise, so the phrase must pick its row.
func TestThousandRowBank(t *testing.T) {
	subjects := []string{"仓库管理员", "叉车司机", "电工", "焊工", "保安", "前台接待", "财务出纳", "销售代表", "实习生", "项目经理"}
	situations := []string{"夜班交接", "暴雨天气", "设备检修", "客户投诉", "节假日值班", "年度审计", "新品发布", "消防演练", "系统升级", "跨部门协作"}
	objects := []string{"灭火器", "访客登记", "发票报销", "合同归档", "安全帽", "门禁卡", "样品借用", "加班申请", "危化品", "备用钥匙"}
	var b strings.Builder
	b.WriteString("题型,题干,选项A,选项B,选项C,选项D,答案,解析,知识点\n")
	type row struct{ phrase string }
	var rows []row
	for i, s := range subjects {
		for j, sit := range situations {
			for k, o := range objects {
				n := i*100 + j*10 + k
				fmt.Fprintf(&b, "单选题,%s在%s期间应当如何处理%s？,立即上报,按规程办理,自行决定,暂不处理,B,按照公司规程第%d条办理。,岗位规程\n", s, sit, o, n)
				rows = append(rows, row{s + " " + sit + " " + o})
			}
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bank.csv"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ins, failed, err := ingest.ReadAll([]string{dir}, 0)
	if err != nil || len(failed) > 0 {
		t.Fatalf("ReadAll = %v, %v", failed, err)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir(), indextest.Analyzer(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateCollection(ctx, index.DefaultCollection("qb")); err != nil {
		t.Fatal(err)
	}
	var docs []index.Document
	for _, in := range ins {
		d, err := ingest.Build(in, ingest.ChunkOptions{})
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d)
	}
	if _, err := st.Upsert(ctx, "qb", docs); err != nil {
		t.Fatal(err)
	}
	t.Logf("1 000-row bank read and indexed in %s", time.Since(start))
	info, err := st.Collection("qb")
	if err != nil || info.Stats.Chunks != 1000 {
		t.Fatalf("collection has %d chunks (%v), want 1000, one per row", info.Stats.Chunks, err)
	}
	s := retrieve.New(st, retrieve.Options{})
	missed := 0
	for _, r := range rows {
		res, err := s.Search(ctx, retrieve.Request{Collection: "qb", Query: r.phrase, TopK: 1})
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Fields(r.phrase)
		want := parts[0] + "在" + parts[1] + "期间应当如何处理" + parts[2] + "？"
		if len(res.Hits) == 0 || res.Hits[0].Question == nil || res.Hits[0].Question.Stem != want {
			if missed++; missed <= 5 {
				got := "nothing"
				if len(res.Hits) > 0 && res.Hits[0].Question != nil {
					got = res.Hits[0].Question.Stem
				}
				t.Errorf("Search(%q) top hit %s, want the row %q", r.phrase, got, want)
			}
		}
	}
	if missed > 0 {
		t.Errorf("%d of %d rows not the top hit for a phrase of their stem", missed, len(rows))
	}
}
