// Package indextest holds the test fixtures that the index packages and their
// callers share: one Analyzer per test binary, and documents built or drawn
// at random for corpora. It imports no store, so the store's own tests use it.
package indextest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/analysis"
)

var analyzer = sync.OnceValues(func() (*analysis.Analyzer, error) { return analysis.New(analysis.Options{}) })

// Analyzer returns the Analyzer with gse's embedded dictionary, loaded once
// per test binary (about half a second) and shared: it is read-only.
func Analyzer(t testing.TB) *analysis.Analyzer {
	t.Helper()
	an, err := analyzer()
	if err != nil {
		t.Fatal(err)
	}
	return an
}

// Doc builds a document with one chunk per section text, under the headings
// 第1节, 第2节, ….
func Doc(id, title string, sections ...string) index.Document {
	d := index.Document{ID: id, Title: title}
	for i, text := range sections {
		path := []string{fmt.Sprintf("第%d节", i+1)}
		d.Chunks = append(d.Chunks, index.Chunk{ID: index.ChunkID(id, path, 0), HeadingPath: path, Ordinal: i, Text: text})
	}
	return d
}

// ZipfWords returns a word source drawn with a Zipf law, so that a few words
// are in most chunks (like 的 and 是) and most are rare: the shape that
// pruning works on.
func ZipfWords(rng *rand.Rand) func() string {
	words := strings.Fields("的 是 在 了 客户 价格 经理 安全 事故 上报 授权 反馈 信任 产品 节能 审批 培训 目标 团队 沟通 " +
		"预算 价值 折扣 区域 下属 期望 检查点 模型 通风 检测 作业 部门 压力 设备 能耗 案例 认证 承诺 跟进 报价 " +
		"合同 付款 发票 库存 物流 质量 投诉 退货 保修 维修 服务 渠道 市场 品牌 竞争 策略 计划 执行 复盘 总结")
	z := rand.NewZipf(rng, 1.2, 2, uint64(len(words)-1))
	return func() string { return words[z.Uint64()] }
}

// RandomDoc is a document of 1-4 sections of 2-26 words drawn by word, with
// a two-word title.
func RandomDoc(rng *rand.Rand, word func() string, id string) index.Document {
	var secs []string
	for range 1 + rng.IntN(4) {
		var ws []string
		for range 2 + rng.IntN(25) {
			ws = append(ws, word())
		}
		secs = append(secs, strings.Join(ws, "，")+"。")
	}
	return Doc(id, word()+word(), secs...)
}

// Fixture is a small corpus of five training documents (sales, leadership,
// safety, a product sheet, customer trust), two sections each. Each call
// returns new documents: writing documents seals them in place.
func Fixture() []index.Document {
	return []index.Document{
		Doc("sales", "价格异议处理", "客户说价格太贵时，先确认客户的预算，再说明产品的价值。", "不要第一时间降价，折扣超过15%需要区域经理审批。"),
		Doc("leader", "新任经理的第一个月", "新任经理要和每位下属做一对一沟通，了解团队的期望。", "授权不是放任，要明确目标和检查点。反馈使用SBI模型。"),
		Doc("safety", "安全生产规定", "第十二条 有限空间作业必须先通风、再检测、后作业。", "事故发生后1小时内上报EHS部门。灭火器使用前检查压力。"),
		Doc("product", "PPR-9087 型号说明", "PPR-9087 是一款节能设备，价格比上一代高，但能耗降低三成。", "客户关心价格时，用节能收益说明价值。"),
		Doc("trust", "建立客户信任", "客户不信任小公司时，用案例和第三方认证建立信任。", "销售要兑现每一个承诺，及时跟进客户。"),
	}
}
