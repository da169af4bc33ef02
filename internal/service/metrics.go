package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zhisou/zhisou/index/store"
	"github.com/zhisou/zhisou/retrieve"
)

// registerStoreMetrics registers the store's metrics: zhisou_quarantined_records,
// the log records set aside because they could not be applied (alert on it
// above 0: see the store's quarantine), and the storeCollector's.
func registerStoreMetrics(reg prometheus.Registerer, st *store.Store, logger *slog.Logger) error {
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "zhisou_quarantined_records",
		Help: "Log records set aside because they could not be applied; their writes were refused. Alert when above 0.",
	}, func() float64 {
		q, err := st.Quarantined()
		if err != nil {
			logger.Error("read quarantined records", "err", err)
			return -1
		}
		return float64(len(q))
	})
	if err := errors.Join(reg.Register(g), reg.Register(&storeCollector{st: st, logger: logger})); err != nil {
		return fmt.Errorf("register store metrics: %w", err)
	}
	return nil
}

// storeCollector reports the store's size and state at each scrape.
type storeCollector struct {
	st     *store.Store
	logger *slog.Logger
}

var (
	descDocs     = prometheus.NewDesc("zhisou_collection_documents", "Documents in a collection.", []string{"collection"}, nil)
	descChunks   = prometheus.NewDesc("zhisou_collection_chunks", "Chunks (passages) in a collection.", []string{"collection"}, nil)
	descLag      = prometheus.NewDesc("zhisou_index_lag_records", "Log records Badger has applied and a collection's bleve index not yet (0 when caught up).", []string{"collection"}, nil)
	descPos      = prometheus.NewDesc("zhisou_log_position", "The last log record Badger has applied.", nil, nil)
	descLogBytes = prometheus.NewDesc("zhisou_log_bytes", "Size of the write log's segment files (kept until a backup holds them).", nil, nil)
	descLogFirst = prometheus.NewDesc("zhisou_log_first_record", "The oldest record the write log still holds (it grows when a backup lets the log drop segments).", nil, nil)
	descBadger   = prometheus.NewDesc("zhisou_badger_bytes", "Size of Badger's files, by kind: lsm (tables) and vlog (value log).", []string{"kind"}, nil)
	descLogLast  = prometheus.NewDesc("zhisou_log_last_record", "The newest record the write log holds (on a shared log, written by any node).", nil, nil)
	descReplica  = prometheus.NewDesc("zhisou_replica_lag_records", "Records in the write log this node has not applied yet (a replica catching up; 0 on a local log). The apply rate is rate(zhisou_log_position).", nil, nil)
	descLagSecs  = prometheus.NewDesc("zhisou_replica_lag_seconds", "How long the oldest record of the shared write log this node has not applied has waited (0 when caught up).", nil, nil)
	descSnapAge  = prometheus.NewDesc("zhisou_snapshot_age_seconds", "Age of the latest snapshot in the shared write log's object store (absent when there is none).", nil, nil)
	storeDescs   = []*prometheus.Desc{descDocs, descChunks, descLag, descPos, descLogBytes, descLogFirst, descBadger, descLogLast, descReplica, descLagSecs, descSnapAge}
)

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range storeDescs {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	for _, info := range c.st.Collections() {
		ch <- prometheus.MustNewConstMetric(descDocs, prometheus.GaugeValue, float64(info.Stats.Docs), info.Name)
		ch <- prometheus.MustNewConstMetric(descChunks, prometheus.GaugeValue, float64(info.Stats.Chunks), info.Name)
	}
	// A scrape does not wait for a write in progress (a large document can
	// take many seconds): it leaves the position and lag out instead.
	if pos, text, ok, err := c.st.TryPositions(); err != nil {
		c.logger.Error("read the store's positions for metrics", "err", err)
	} else if ok {
		ch <- prometheus.MustNewConstMetric(descPos, prometheus.GaugeValue, float64(pos))
		for name, p := range text {
			ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(pos-min(p, pos)), name)
		}
	}
	ls := c.st.LogStats()
	ch <- prometheus.MustNewConstMetric(descLogBytes, prometheus.GaugeValue, float64(ls.Bytes))
	ch <- prometheus.MustNewConstMetric(descLogFirst, prometheus.GaugeValue, float64(ls.First))
	ch <- prometheus.MustNewConstMetric(descLogLast, prometheus.GaugeValue, float64(ls.Last))
	applied := c.st.Pos()
	ch <- prometheus.MustNewConstMetric(descReplica, prometheus.GaugeValue, float64(ls.Last-min(ls.Last, applied)))
	c.collectShared(ch, applied, ls.Last)
	lsm, vlog := c.st.BadgerBytes()
	ch <- prometheus.MustNewConstMetric(descBadger, prometheus.GaugeValue, float64(lsm), "lsm")
	ch <- prometheus.MustNewConstMetric(descBadger, prometheus.GaugeValue, float64(vlog), "vlog")
}

// rerankMetrics count what the reranker did, by provider and status.
type rerankMetrics struct {
	calls      *prometheus.CounterVec   // provider, status
	tokens     *prometheus.CounterVec   // provider, kind (prompt, completion, reasoning, cached)
	seconds    *prometheus.HistogramVec // provider
	topChanged *prometheus.CounterVec   // provider
	cost       *prometheus.CounterVec   // provider
}

func newRerankMetrics(reg prometheus.Registerer) (*rerankMetrics, error) {
	m := &rerankMetrics{
		calls:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zhisou_rerank_total", Help: "Rerank attempts by provider and status (ok, timeout, rate_limited, refused, ...)."}, []string{"provider", "status"}),
		tokens:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zhisou_rerank_tokens_total", Help: "Tokens the rerank providers reported, by kind."}, []string{"provider", "kind"}),
		seconds:    prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "zhisou_rerank_seconds", Help: "Rerank call time.", Buckets: []float64{.05, .1, .2, .3, .5, .75, 1, 1.2, 1.5, 2, 3, 5}}, []string{"provider"}),
		topChanged: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zhisou_rerank_top_changed_total", Help: "Reranks that changed the first hit."}, []string{"provider"}),
		cost:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zhisou_rerank_cost_total", Help: "Estimated rerank cost from the configured prices."}, []string{"provider"}),
	}
	for _, c := range []prometheus.Collector{m.calls, m.tokens, m.seconds, m.topChanged, m.cost} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register rerank metrics: %w", err)
		}
	}
	return m, nil
}

// observe counts one rerank; a nil m counts nothing.
func (m *rerankMetrics) observe(ri *retrieve.RerankInfo) {
	if m == nil || ri == nil || !ri.Status.Attempted() {
		return
	}
	p := ri.Provider
	m.calls.WithLabelValues(p, string(ri.Status)).Inc()
	for kind, n := range map[string]int{"prompt": ri.Usage.Prompt, "completion": ri.Usage.Completion, "reasoning": ri.Usage.Reasoning, "cached": ri.Usage.Cached} {
		if n > 0 {
			m.tokens.WithLabelValues(p, kind).Add(float64(n))
		}
	}
	if ri.Took > 0 {
		m.seconds.WithLabelValues(p).Observe(ri.Took.Seconds())
	}
	if ri.TopChanged {
		m.topChanged.WithLabelValues(p).Inc()
	}
	if ri.Cost > 0 {
		m.cost.WithLabelValues(p).Add(ri.Cost)
	}
}

// The shared write log's own figures (natslog.Log has them).
type (
	recordTimes interface {
		RecordTime(ctx context.Context, seq uint64) (time.Time, error)
	}
	snapshotTimes interface {
		SnapshotTaken(ctx context.Context) (time.Time, error)
	}
)

// collectShared reports the replica's lag in seconds and the latest
// snapshot's age, when the store's log is shared; a figure the log does not
// answer in time is left out of the scrape.
func (c *storeCollector) collectShared(ch chan<- prometheus.Metric, applied, last uint64) {
	l := c.st.SharedLog()
	if l == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if rt, ok := l.(recordTimes); ok {
		lag := 0.0
		if applied < last {
			if t, err := rt.RecordTime(ctx, applied+1); err == nil {
				lag = time.Since(t).Seconds()
			} else {
				lag = -1
			}
		}
		if lag >= 0 {
			ch <- prometheus.MustNewConstMetric(descLagSecs, prometheus.GaugeValue, lag)
		}
	}
	if st, ok := l.(snapshotTimes); ok {
		if t, err := st.SnapshotTaken(ctx); err == nil {
			ch <- prometheus.MustNewConstMetric(descSnapAge, prometheus.GaugeValue, time.Since(t).Seconds())
		}
	}
}
