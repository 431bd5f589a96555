package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"sluice/tests/go/internal/testkit"
)

func parts(m map[string][]int32, topic string) []int32 {
	ps := append([]int32(nil), m[topic]...)
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}

// cmdMember is a group member (kgo.ConsumerGroup) that commits what it
// consumed after every poll and before giving partitions up, with
// rebalances held off between a poll and its commit: no record is consumed
// twice by the group.
func cmdMember(pos []string, fs *flag.FlagSet, timeout *int) func() {
	name := fs.String("name", "franz-member", "instance name (for logs)")
	stopFile := fs.String("stop-file", "", "leave the group once this file exists")
	sessionMs := fs.Int("session-timeout-ms", 10000, "session.timeout.ms")
	protocol := fs.String("protocol", "classic", "classic (client-side cooperative-sticky) or consumer (KIP-848)")
	return func() {
		if *stopFile == "" {
			testkit.Fail("member: --stop-file is required")
		}
		ctx := testkit.Deadline(*timeout)
		topic, group := pos[1], pos[2]
		m := testkit.NewMember()
		commit := func(ctx context.Context, cl *kgo.Client, what string) {
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				testkit.Fail("%s: commit (%s): %v", *name, what, err)
			}
		}
		opts := []kgo.Opt{
			kgo.ConsumerGroup(group),
			kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.DisableAutoCommit(),
			kgo.BlockRebalanceOnPoll(),
			kgo.SessionTimeout(time.Duration(*sessionMs) * time.Millisecond),
			kgo.OnPartitionsAssigned(func(_ context.Context, cl *kgo.Client, a map[string][]int32) {
				member, gen := cl.GroupMetadata()
				m.Assigned(gen, member, parts(a, topic))
			}),
			kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, r map[string][]int32) {
				commit(ctx, cl, "before revoke")
				m.Revoked(parts(r, topic))
			}),
			kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) {
				m.Revoked(parts(l, topic))
			}),
		}
		switch *protocol {
		case "classic":
		case "consumer":
			opts = append(opts, kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer()))
		default:
			testkit.Fail("--protocol %q: want classic or consumer", *protocol)
		}
		cl := client(pos[0], opts...)
		for !testkit.StopRequested(*stopFile) {
			pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			fetches := cl.PollFetches(pctx)
			cancel()
			if ctx.Err() != nil {
				testkit.Fail("%s: overall deadline passed", *name)
			}
			fetches.EachError(func(t string, p int32, err error) {
				if !errors.Is(err, context.DeadlineExceeded) {
					testkit.Fail("%s: fetch %s/%d: %v", *name, t, p, err)
				}
			})
			var recs [][]any
			fetches.EachRecord(func(r *kgo.Record) { recs = append(recs, recOf(r)) })
			m.Records(recs)
			if len(recs) > 0 {
				commit(ctx, cl, "after poll")
			}
			cl.AllowRebalance()
		}
		commit(ctx, cl, "before leaving")
		testkit.Check(cl.LeaveGroupContext(ctx), *name+": LeaveGroup")
		cl.Close()
		m.Closed()
	}
}

// cmdCommitted prints the group's committed offsets for topic (OffsetFetch).
func cmdCommitted(pos []string, fs *flag.FlagSet, timeout *int) func() {
	return func() {
		ctx := testkit.Deadline(*timeout)
		cl := client(pos[0])
		defer cl.Close()
		resp, err := kadm.NewClient(cl).FetchOffsets(ctx, pos[2])
		testkit.Check(err, "OffsetFetch "+pos[2])
		committed := map[string]int64{}
		for p, o := range resp[pos[1]] {
			testkit.Check(o.Err, fmt.Sprintf("OffsetFetch of partition %d", p))
			committed[fmt.Sprint(p)] = o.At
		}
		testkit.Emit(map[string]any{"committed": committed})
	}
}
