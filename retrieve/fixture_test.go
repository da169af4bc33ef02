package retrieve_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/analysis"
	"github.com/zhisou/zhisou/index/indextest"
	"github.com/zhisou/zhisou/index/store"
	"github.com/zhisou/zhisou/index/store/storetest"
	"github.com/zhisou/zhisou/ingest"
	"github.com/zhisou/zhisou/retrieve"
)

// testAnalyzer is the shared test Analyzer.
func testAnalyzer(t testing.TB) *analysis.Analyzer { return indextest.Analyzer(t) }

// source is a training document as an author writes it.
type source struct {
	id, content string
	meta        map[string]string
	chunks      ingest.ChunkOptions
}

// The training corpus of collection "c". Each document answers a different
// kind of question, so that the right one ranking first is meaningful.
var corpus = []source{
	{id: "sales-objections", meta: map[string]string{"course": "sales"}, content: `# 销售异议处理

## 第一章 价格异议

客户说价格太贵时，先确认客户的预算，再说明产品的价值。不要第一时间降价，折扣超过百分之十五需要区域经理审批。

## 第二章 信任异议

客户不信任小公司时，用成功案例和第三方认证建立信任。销售要兑现每一个承诺，及时跟进。

## 第三章 拖延异议

客户说“再考虑考虑”时，要问清楚顾虑在哪里，并约定下一次沟通的时间。
`},
	{id: "safety-rules", meta: map[string]string{"course": "safety"}, content: `# 安全生产规定

## 第三章 作业安全

第十二条 有限空间作业必须先通风、再检测、后作业，作业时必须有专人在外监护。

第十三条 动火作业前必须办理动火许可证，并清理周围的易燃物品。

## 第四章 应急处置

事故发生后一小时内上报安全环保部门。灭火器使用前检查压力表是否在绿区。
`},
	{id: "product-ppr", meta: map[string]string{"course": "sales"}, content: `# PPR-9087 节能空压机

## 产品介绍

PPR-9087 是一款节能空压机，售价比上一代高，但能耗降低三成，两年内可以收回差价。

## 常见问题

维修保养每半年一次，滤芯需要原厂配件。
`},
	{id: "new-manager", meta: map[string]string{"course": "management"}, content: `# 新任经理的第一个月

## 第一周

新任经理要和每位下属做一对一沟通，了解团队的期望。

## 授权

授权不是放任，要明确目标和检查点。反馈时使用情境、行为、影响模型。
`},
	// A long section cut into small chunks, for the section context.
	{id: "onboarding", meta: map[string]string{"course": "management"}, chunks: ingest.ChunkOptions{Target: 30}, content: `# 新员工入职指南

## 第一天

到前台领取工牌和电脑。人事专员会带你参观办公区。下午参加公司文化培训。晚上填写入职信息表。导师会在下班前和你见面。

## 第二天

开通邮箱和内部系统账号。阅读部门的工作手册。
`},
	{id: "customer-faq", meta: map[string]string{"course": "service"}, content: customerFAQ()},
}

// customerFAQ is a document with many short sections that all mention 客户,
// more than a default page of hits.
func customerFAQ() string {
	tips := []string{
		"客户来电时先报公司名称和自己的姓名。",
		"客户投诉时先道歉，再记录问题的细节。",
		"客户要求退货时，按照七天无理由退货流程办理。",
		"客户询问物流时，提供运单号和预计到达时间。",
		"客户情绪激动时，保持冷静，不要打断。",
		"客户要发票时，核对抬头和税号。",
		"客户提出合理建议时，记录并转给产品部门。",
		"客户长时间没有回复时，三天后再跟进一次。",
		"客户要求上门安装时，预约工程师的时间。",
		"客户反映质量问题时，请客户拍照上传。",
		"客户询问优惠活动时，说明活动的起止日期。",
		"客户结束通话前，询问是否还有其他问题。",
	}
	var b strings.Builder
	b.WriteString("# 客户服务常见问题\n")
	for i, tip := range tips {
		fmt.Fprintf(&b, "\n## 问题%d\n\n%s\n", i+1, tip)
	}
	return b.String()
}

// traditional is the corpus of collection "t": one document in traditional
// Chinese with full-width letters and digits.
var traditional = []source{
	{id: "product-trad", meta: map[string]string{"course": "sales"}, content: `# 產品手冊

## 型號說明

型號ＰＰＲ－９０８７的節能設備，價格較高，但能耗降低三成。客戶關心價格時，用節能收益說明價值。
`},
}

// testStore opens a store in a temporary directory with the corpus in
// collection "c" and the traditional corpus in collection "t".
func testStore(t testing.TB) *store.Store {
	t.Helper()
	st := storetest.WithCollections(t, "c", "t")
	for name, srcs := range map[string][]source{"c": corpus, "t": traditional} {
		var docs []index.Document
		for _, s := range srcs {
			d, err := ingest.Build(ingest.Input{ID: s.id, Format: ingest.Markdown, Content: s.content, Metadata: s.meta}, s.chunks)
			if err != nil {
				t.Fatal(err)
			}
			docs = append(docs, d)
		}
		if _, err := st.Upsert(t.Context(), name, docs); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// testSearcher returns a Searcher over a fresh test store.
func testSearcher(t testing.TB, opts retrieve.Options) *retrieve.Searcher {
	t.Helper()
	return retrieve.New(testStore(t), opts)
}
