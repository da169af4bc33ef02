// Package grpcapitest runs the gRPC server in-process for tests, over an
// in-memory connection, on a fresh store; and seeds it with a small corpus.
package grpcapitest

import (
	"context"
	"log/slog"
	"net"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"

	"github.com/zhisou/zhisou/index/indextest"
	"github.com/zhisou/zhisou/index/store"
	"github.com/zhisou/zhisou/internal/grpcapi"
	"github.com/zhisou/zhisou/internal/service"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
	"github.com/zhisou/zhisou/retrieve"
)

// Server is a running test server and what tests look into.
type Server struct {
	Client retrievalv1.RetrievalServiceClient
	Conn   *grpc.ClientConn
	// Registry holds the server's gRPC and rerank metrics.
	Registry *prometheus.Registry
	Store    *store.Store
	// GRPC is the server; tests may Serve it on another listener too.
	GRPC *grpc.Server
	// Service is the service the server calls, for other doors over it.
	Service *service.Service
	// Health is the server's health service.
	Health *health.Server
}

// Serve runs the gRPC server on a fresh store over an in-memory connection,
// stopped when the test ends.
func Serve(tb testing.TB, opts retrieve.Options) *Server {
	tb.Helper()
	return ServeWith(tb, service.Options{Retrieve: opts})
}

// ServeWith is Serve with the service's options (its logger and registerer
// are the test server's own).
func ServeWith(tb testing.TB, sopts service.Options) *Server {
	tb.Helper()
	st, err := store.Open(context.Background(), tb.TempDir(), indextest.Analyzer(tb), store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	sopts.Logger, sopts.Registerer = logger, reg
	svc, err := service.New(st, sopts)
	if err != nil {
		tb.Fatal(err)
	}
	hs := health.NewServer()
	gs, err := grpcapi.NewServer(logger, reg, svc, hs)
	if err != nil {
		tb.Fatal(err)
	}
	lis := bufconn.Listen(1 << 20)
	go gs.Serve(lis) // ends at Stop below
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		conn.Close()
		gs.Stop()
		st.Close()
	})
	return &Server{Client: retrievalv1.NewRetrievalServiceClient(conn), Conn: conn, Registry: reg, Store: st, GRPC: gs, Service: svc, Health: hs}
}

// SalesMD is a sales lesson with a two-level outline.
const SalesMD = `# 第二章 价格异议处理

客户说太贵，是销售中最常见的异议。先确认预算，再说明价值。

## 2.1 确认预算

询问客户的预算范围，不要第一时间降价。折扣超过15%需区域经理审批。

## 2.2 说明价值

用节能收益说明 PPR-9087 的价值。一年可节省电费三万元。
`

// SafetyMD is a safety regulation without sub-headings.
const SafetyMD = `# 安全生产管理规定

第十二条 有限空间作业必须先通风、再检测、后作业，监护人不得离开。

第十七条 事故发生后1小时内上报EHS部门。
`

// Seed creates the collection "kb" with SalesMD as "sales/price" and
// SafetyMD as "safety/rules" (metadata course sales and safety).
func Seed(t testing.TB, c retrievalv1.RetrievalServiceClient) {
	t.Helper()
	SeedAs(t, c, "")
}

// SeedAs is Seed with an API key (none when token is "").
func SeedAs(t testing.TB, c retrievalv1.RetrievalServiceClient, token string) {
	t.Helper()
	ctx := context.Background()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	if _, err := c.CreateCollection(ctx, &retrievalv1.CreateCollectionRequest{Collection: &retrievalv1.Collection{Name: "kb"}}); err != nil {
		t.Fatal(err)
	}
	md := retrievalv1.DocumentFormat_DOCUMENT_FORMAT_MARKDOWN
	resp, err := c.UpsertDocuments(ctx, &retrievalv1.UpsertDocumentsRequest{Collection: "kb", Documents: []*retrievalv1.Document{
		{Id: "sales/price", Content: SalesMD, Format: md, Metadata: map[string]string{"course": "sales"}},
		{Id: "safety/rules", Content: SafetyMD, Format: md, Metadata: map[string]string{"course": "safety"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.GetResults() {
		if r.GetOutcome() != retrievalv1.UpsertOutcome_UPSERT_OUTCOME_ADDED {
			t.Fatalf("UpsertDocuments: %s outcome %v, want ADDED", r.GetDocumentId(), r.GetOutcome())
		}
	}
}

// The course: one lesson uses the jargon term 三明治反馈法 and the product
// code 天枢X9 whole; the canteen notice and the catalogue only contain their
// pieces (三明治, 反馈, 法; 天枢, X9), several times and in short chunks, so
// that plain segmentation ranks them first.
// FeedbackMD is a lesson that uses 三明治反馈法 and 天枢X9 whole.
const FeedbackMD = `# 第四章 绩效沟通

## 4.1 谈话的结构

新任经理和下属谈绩效时，可以使用三明治反馈法：先肯定下属做得好的地方，再具体指出需要改进的行为和它带来的影响，最后表达信任并约定下一步行动，让下属带着清楚的目标离开。这种方式适合日常辅导，也适合季度绩效面谈，关键在于真诚。

## 4.2 工具

部门采购的天枢X9控制器用于记录面谈要点，面谈结束后由系统自动生成纪要，经理核对后发给下属确认。
`

// CanteenMD has the pieces of 三明治反馈法 only.
const CanteenMD = `# 员工餐厅通知

三明治反馈：三明治太干的反馈已收到，三明治做法已改进，欢迎继续反馈。
`

// CatalogueMD has the pieces of 天枢X9 only.
const CatalogueMD = `# 产品目录

天枢系列：天枢主机，配件X9，其他型号见附录。
`
