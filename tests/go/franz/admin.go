package main

import (
	"context"
	"flag"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"sluice/tests/go/internal/testkit"
)

func code(err error) any {
	return testkit.Code(err, func(e *kerr.Error) int16 { return e.Code })
}

func describeConfigs(ctx context.Context, adm *kadm.Client, topic string, keys ...string) map[string]any {
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	testkit.Check(err, "DescribeConfigs "+topic)
	rc, err := rcs.On(topic, nil)
	testkit.Check(err, "DescribeConfigs "+topic)
	testkit.Check(rc.Err, "DescribeConfigs "+topic)
	out := map[string]any{}
	for _, c := range rc.Configs {
		for _, k := range keys {
			if c.Key == k {
				out[k] = map[string]any{"value": c.MaybeValue(), "source": c.Source.String()}
			}
		}
	}
	return out
}

func listed(ctx context.Context, adm *kadm.Client, names ...string) []string {
	all, err := adm.ListTopics(ctx)
	testkit.Check(err, "Metadata (all topics)")
	out := []string{}
	for _, n := range names {
		if _, ok := all[n]; ok {
			out = append(out, n)
		}
	}
	return out
}

// cmdAdmin runs kadm calls one after another on topics PREFIX-a and
// PREFIX-b and reports what each returned; the Rust test checks them.
func cmdAdmin(pos []string, fs *flag.FlagSet, timeout *int) func() {
	return func() {
		ctx := testkit.Deadline(*timeout)
		cl := client(pos[0])
		defer cl.Close()
		adm := kadm.NewClient(cl)
		a, b, unknown := pos[1]+"-a", pos[1]+"-b", pos[1]+"-unknown"
		out := map[string]any{}

		meta, err := adm.BrokerMetadata(ctx)
		testkit.Check(err, "Metadata (brokers)")
		out["brokers"] = meta.Brokers.NodeIDs()

		created := map[string]any{}
		ra, err := adm.CreateTopics(ctx, 3, 1, map[string]*string{"retention.ms": kadm.StringPtr("3600000"), "cleanup.policy": kadm.StringPtr("compact")}, a)
		testkit.Check(err, "CreateTopics "+a)
		rb, err := adm.CreateTopics(ctx, 2, 1, nil, b)
		testkit.Check(err, "CreateTopics "+b)
		for _, r := range []kadm.CreateTopicResponse{ra[a], rb[b]} {
			created[r.Topic] = map[string]any{"error": code(r.Err), "partitions": r.NumPartitions, "id_set": r.ID != kadm.TopicID{}}
		}
		out["created"] = created
		dup, err := adm.CreateTopics(ctx, 3, 1, nil, a)
		testkit.Check(err, "CreateTopics "+a+" again")
		out["duplicate"] = code(dup[a].Err)

		described := map[string]any{}
		for topic, n := range map[string]int{a: 3, b: 2} {
			t := waitPartitions(ctx, adm, topic, n)
			var ps []map[string]any
			for _, p := range t.Partitions.Sorted() {
				ps = append(ps, map[string]any{"partition": p.Partition, "leader": p.Leader, "replicas": p.Replicas, "isr": p.ISR})
			}
			described[topic] = map[string]any{"partitions": ps, "internal": t.IsInternal}
		}
		out["described"] = described
		out["listed"] = listed(ctx, adm, a, b)
		unk, err := adm.ListTopics(ctx, unknown)
		testkit.Check(err, "Metadata "+unknown)
		out["describe_unknown"] = code(unk[unknown].Err)

		out["configs"] = describeConfigs(ctx, adm, a, "retention.ms", "cleanup.policy")
		alter := func(topic string, cfgs ...kadm.AlterConfig) any {
			rs, err := adm.AlterTopicConfigs(ctx, cfgs, topic)
			testkit.Check(err, "IncrementalAlterConfigs "+topic)
			r, err := rs.On(topic, nil)
			testkit.Check(err, "IncrementalAlterConfigs "+topic)
			return code(r.Err)
		}
		out["alter"] = alter(a,
			kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("7200000")},
			kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "cleanup.policy"})
		out["configs_altered"] = describeConfigs(ctx, adm, a, "retention.ms", "cleanup.policy")
		out["alter_invalid"] = alter(a, kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("not-a-number")})
		out["alter_unknown"] = alter(unknown, kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("1000")})
		rcs, err := adm.DescribeTopicConfigs(ctx, unknown)
		if err == nil {
			rc, _ := rcs.On(unknown, nil)
			err = rc.Err
		}
		out["configs_unknown"] = code(err)

		dels, err := adm.DeleteTopics(ctx, a, b)
		testkit.Check(err, "DeleteTopics")
		deleted := map[string]any{}
		for _, d := range dels.Sorted() {
			deleted[d.Topic] = code(d.Err)
		}
		out["deleted"] = deleted
		// Deletion reaches the metadata asynchronously on Kafka: wait, bounded.
		var left []string
		for end := time.Now().Add(30 * time.Second); ; {
			left = listed(ctx, adm, a, b)
			if len(left) == 0 || time.Now().After(end) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		sort.Strings(left)
		out["listed_after_delete"] = left
		du, err := adm.DeleteTopics(ctx, unknown)
		testkit.Check(err, "DeleteTopics "+unknown)
		out["delete_unknown"] = code(du[unknown].Err)
		// Describing the unknown topic must not have created it.
		out["unknown_listed"] = listed(ctx, adm, unknown)
		testkit.Emit(out)
	}
}
