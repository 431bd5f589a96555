package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"sluice/tests/go/internal/testkit"
)

type configFlags map[string]*string

func (c configFlags) String() string { return fmt.Sprint(map[string]*string(c)) }

func (c configFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("want K=V, got %q", s)
	}
	c[k] = &v
	return nil
}

func cmdCreate(pos []string, fs *flag.FlagSet, timeout *int) func() {
	configs := configFlags{}
	fs.Var(configs, "config", "a topic config K=V (repeatable)")
	return func() {
		ctx := testkit.Deadline(*timeout)
		var partitions int32
		_, err := fmt.Sscan(pos[2], &partitions)
		testkit.Check(err, "PARTITIONS")
		cl := client(pos[0])
		defer cl.Close()
		adm := kadm.NewClient(cl)
		resp, err := adm.CreateTopic(ctx, partitions, 1, configs, pos[1])
		testkit.Check(err, "CreateTopics "+pos[1])
		waitPartitions(ctx, adm, pos[1], int(partitions))
		testkit.Emit(map[string]any{"created": resp.Topic, "partitions": resp.NumPartitions})
	}
}

// waitPartitions waits until the metadata shows topic with want partitions,
// each with a leader (a created topic may take a moment to appear).
func waitPartitions(ctx context.Context, adm *kadm.Client, topic string, want int) kadm.TopicDetail {
	for {
		topics, err := adm.ListTopics(ctx, topic)
		testkit.Check(err, "Metadata "+topic)
		t := topics[topic]
		ready := t.Err == nil && len(t.Partitions) == want
		for _, p := range t.Partitions {
			ready = ready && p.Err == nil && p.Leader >= 0
		}
		if ready {
			return t
		}
		select {
		case <-ctx.Done():
			testkit.Fail("topic %s: metadata never showed %d partitions with leaders: %+v", topic, want, t)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func toKgoHeaders(hs []testkit.Header) []kgo.RecordHeader {
	out := make([]kgo.RecordHeader, 0, len(hs))
	for _, h := range hs {
		out = append(out, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	return out
}

func fromKgoHeaders(hs []kgo.RecordHeader) []testkit.Header {
	out := make([]testkit.Header, 0, len(hs))
	for _, h := range hs {
		out = append(out, testkit.Header{Key: h.Key, Value: h.Value})
	}
	return out
}

func recOf(r *kgo.Record) []any {
	return testkit.Rec(r.Partition, r.Offset, r.Key, r.Value, fromKgoHeaders(r.Headers), r.Timestamp)
}

func cmdProduce(pos []string, fs *flag.FlagSet, timeout *int) func() {
	count := fs.Int("count", 1000, "records to send")
	seed := fs.String("seed", "franz", "record generator seed")
	return func() {
		ctx := testkit.Deadline(*timeout)
		cl := client(pos[0])
		defer cl.Close()
		base := testkit.BaseMs()
		delivered := make([][]any, *count)
		var (
			mu        sync.Mutex
			failed    []string
			producers = map[string]bool{}
			wg        sync.WaitGroup
		)
		for i := 0; i < *count; i++ {
			r := testkit.Make(*seed, i, base)
			rec := &kgo.Record{Topic: pos[1], Key: r.Key, Value: r.Value, Headers: toKgoHeaders(r.Headers), Timestamp: r.Timestamp}
			wg.Add(1)
			cl.Produce(ctx, rec, func(got *kgo.Record, err error) {
				defer wg.Done()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed = append(failed, fmt.Sprintf("record %d: %v", i, err))
					return
				}
				delivered[i] = recOf(got)
				producers[fmt.Sprintf("%d/%d", got.ProducerID, got.ProducerEpoch)] = true
			})
		}
		wg.Wait()
		if len(failed) > 0 {
			testkit.Fail("%d of %d deliveries failed, first: %s", len(failed), *count, failed[0])
		}
		ids := make([]string, 0, len(producers))
		for id := range producers {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		// "producers" (id/epoch of every acknowledged record) shows the
		// batches went out idempotently: one id, not -1.
		testkit.Emit(map[string]any{"delivered": delivered, "producers": ids})
	}
}

func cmdConsume(pos []string, fs *flag.FlagSet, timeout *int) func() {
	return func() {
		ctx := testkit.Deadline(*timeout)
		topic := pos[1]
		admCl := client(pos[0])
		defer admCl.Close()
		adm := kadm.NewClient(admCl)
		starts, err := adm.ListStartOffsets(ctx, topic)
		testkit.Check(err, "ListOffsets earliest")
		ends, err := adm.ListEndOffsets(ctx, topic)
		testkit.Check(err, "ListOffsets latest")
		low, high := map[string]int64{}, map[string]int64{}
		next := map[int32]int64{}
		assign := map[int32]kgo.Offset{}
		for p, o := range starts[topic] {
			testkit.Check(o.Err, fmt.Sprintf("ListOffsets earliest of partition %d", p))
			e := ends[topic][p]
			testkit.Check(e.Err, fmt.Sprintf("ListOffsets latest of partition %d", p))
			low[fmt.Sprint(p)], high[fmt.Sprint(p)] = o.Offset, e.Offset
			if e.Offset > o.Offset {
				next[p] = o.Offset
				assign[p] = kgo.NewOffset().At(o.Offset)
			}
		}
		if len(starts[topic]) == 0 {
			testkit.Fail("ListOffsets: topic %s has no partitions", topic)
		}
		records := [][]any{}
		if len(assign) > 0 {
			cl := client(pos[0], kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: assign}))
			defer cl.Close()
			for done := false; !done; {
				fetches := cl.PollFetches(ctx)
				fetches.EachError(func(t string, p int32, err error) {
					testkit.Fail("fetch %s/%d: %v", t, p, err)
				})
				fetches.EachRecord(func(r *kgo.Record) {
					records = append(records, recOf(r))
					next[r.Partition] = r.Offset + 1
				})
				done = true
				for p, at := range next {
					done = done && at >= high[fmt.Sprint(p)]
				}
			}
		}
		testkit.Emit(map[string]any{"records": records, "low": low, "high": high})
	}
}
