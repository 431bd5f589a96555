package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"time"

	"github.com/IBM/sarama"

	"sluice/tests/go/internal/testkit"
)

// handler reports each session's claims, marks every consumed message and
// commits synchronously when the session ends (before the next generation
// can hand the partitions to another member).
type handler struct {
	topic string
	m     *testkit.Member
	name  string
}

func (h *handler) claims(s sarama.ConsumerGroupSession) []int32 {
	ps := append([]int32(nil), s.Claims()[h.topic]...)
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}

func (h *handler) Setup(s sarama.ConsumerGroupSession) error {
	h.m.Replaced(s.GenerationID(), s.MemberID(), h.claims(s))
	return nil
}

func (h *handler) Cleanup(s sarama.ConsumerGroupSession) error {
	s.Commit()
	h.m.Revoked(h.claims(s))
	return nil
}

func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for {
		select {
		case <-s.Context().Done():
			return nil
		case msg, ok := <-c.Messages():
			if !ok {
				return nil
			}
			// Whatever else is already buffered goes into the same event.
			batch := []*sarama.ConsumerMessage{msg}
		drain:
			for len(batch) < 500 {
				select {
				case more, ok := <-c.Messages():
					if !ok {
						break drain
					}
					batch = append(batch, more)
				default:
					break drain
				}
			}
			recs := make([][]any, 0, len(batch))
			for _, m := range batch {
				hs := make([]testkit.Header, 0, len(m.Headers))
				for _, rh := range m.Headers {
					hs = append(hs, testkit.Header{Key: string(rh.Key), Value: rh.Value})
				}
				recs = append(recs, testkit.Rec(m.Partition, m.Offset, m.Key, m.Value, hs, m.Timestamp))
				s.MarkMessage(m, "")
			}
			h.m.Records(recs)
		}
	}
}

func cmdMember(pos []string, fs *flag.FlagSet, opts *options) func() {
	name := fs.String("name", "sarama-member", "instance name (for logs)")
	stopFile := fs.String("stop-file", "", "leave the group once this file exists")
	sessionMs := fs.Int("session-timeout-ms", 10000, "Consumer.Group.Session.Timeout")
	return func() {
		if *stopFile == "" {
			testkit.Fail("member: --stop-file is required")
		}
		deadline := testkit.Deadline(*opts.timeout)
		topic, group := pos[1], pos[2]
		cfg := opts.config()
		cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
		cfg.Consumer.Return.Errors = true
		cfg.Consumer.Group.Session.Timeout = time.Duration(*sessionMs) * time.Millisecond
		cfg.Consumer.Group.Heartbeat.Interval = cfg.Consumer.Group.Session.Timeout / 5
		cg, err := sarama.NewConsumerGroup([]string{pos[0]}, group, cfg)
		testkit.Check(err, "NewConsumerGroup")
		go func() {
			for err := range cg.Errors() {
				testkit.Fail("%s: consumer group error: %v", *name, err)
			}
		}()
		ctx, stop := context.WithCancel(deadline)
		go func() {
			for !testkit.StopRequested(*stopFile) && ctx.Err() == nil {
				time.Sleep(50 * time.Millisecond)
			}
			stop()
		}()
		h := &handler{topic: topic, m: testkit.NewMember(), name: *name}
		for ctx.Err() == nil {
			// Consume returns at the end of each session (a rebalance): join again.
			if err := cg.Consume(ctx, []string{topic}, h); err != nil && !errors.Is(err, context.Canceled) {
				testkit.Fail("%s: Consume: %v", *name, err)
			}
		}
		if deadline.Err() != nil {
			testkit.Fail("%s: overall deadline passed", *name)
		}
		testkit.Check(cg.Close(), *name+": closing the consumer group")
		h.m.Closed()
	}
}

// cmdCommitted prints the group's committed offsets for topic (OffsetFetch
// through the ClusterAdmin).
func cmdCommitted(pos []string, fs *flag.FlagSet, opts *options) func() {
	return func() {
		testkit.Deadline(*opts.timeout)
		adm, err := sarama.NewClusterAdmin([]string{pos[0]}, opts.config())
		testkit.Check(err, "NewClusterAdmin")
		defer adm.Close()
		resp, err := adm.ListConsumerGroupOffsets(pos[2], nil)
		testkit.Check(err, "ListConsumerGroupOffsets")
		if resp.Err != sarama.ErrNoError {
			testkit.Fail("ListConsumerGroupOffsets: %v", resp.Err)
		}
		committed := map[string]int64{}
		for p, b := range resp.Blocks[pos[1]] {
			if b.Err != sarama.ErrNoError {
				testkit.Fail("OffsetFetch of partition %d: %v", p, b.Err)
			}
			committed[fmt.Sprint(p)] = b.Offset
		}
		testkit.Emit(map[string]any{"committed": committed})
	}
}
