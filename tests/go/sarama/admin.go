package main

import (
	"flag"
	"sort"
	"time"

	"github.com/IBM/sarama"

	"sluice/tests/go/internal/testkit"
)

func code(err error) any {
	return testkit.Code(err, func(e sarama.KError) int16 { return int16(e) })
}

// cmdAdmin runs ClusterAdmin calls one after another on topic PREFIX-a and
// reports what each returned; the Rust test checks them.
func cmdAdmin(pos []string, fs *flag.FlagSet, opts *options) func() {
	return func() {
		testkit.Deadline(*opts.timeout)
		cfg := opts.config()
		adm, err := sarama.NewClusterAdmin([]string{pos[0]}, cfg)
		testkit.Check(err, "NewClusterAdmin")
		defer adm.Close()
		topic, unknown := pos[1]+"-a", pos[1]+"-unknown"
		out := map[string]any{"version": cfg.Version.String()}

		brokers, controller, err := adm.DescribeCluster()
		testkit.Check(err, "DescribeCluster")
		ids := []int32{}
		for _, b := range brokers {
			ids = append(ids, b.ID())
		}
		out["brokers"] = ids
		out["controller"] = controller

		retention := "3600000"
		detail := &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1, ConfigEntries: map[string]*string{"retention.ms": &retention}}
		out["create"] = code(adm.CreateTopic(topic, detail, false))
		out["duplicate"] = code(adm.CreateTopic(topic, detail, false))

		// A created topic may take a moment to show in the metadata: wait, bounded.
		var partitions []map[string]any
		for end := time.Now().Add(30 * time.Second); ; {
			md, err := adm.DescribeTopics([]string{topic})
			testkit.Check(err, "DescribeTopics")
			partitions = nil
			ready := len(md) == 1 && md[0].Err == sarama.ErrNoError && len(md[0].Partitions) == 3
			for _, p := range md[0].Partitions {
				partitions = append(partitions, map[string]any{"partition": p.ID, "leader": p.Leader, "replicas": p.Replicas})
				ready = ready && p.Err == sarama.ErrNoError && p.Leader >= 0
			}
			if ready || time.Now().After(end) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		sort.Slice(partitions, func(i, j int) bool { return partitions[i]["partition"].(int32) < partitions[j]["partition"].(int32) })
		out["described"] = partitions

		topics, err := adm.ListTopics()
		testkit.Check(err, "ListTopics")
		if d, ok := topics[topic]; ok {
			// ListTopics also describes the configs and keeps the non-default ones.
			cfgs := map[string]string{}
			for k, v := range d.ConfigEntries {
				if v != nil {
					cfgs[k] = *v
				}
			}
			out["listed"] = map[string]any{"partitions": d.NumPartitions, "replication_factor": d.ReplicationFactor, "configs": cfgs}
		}
		entries, err := adm.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic, ConfigNames: []string{"retention.ms"}})
		testkit.Check(err, "DescribeConfigs")
		described := map[string]any{}
		for _, e := range entries {
			described[e.Name] = map[string]any{"value": e.Value, "source": e.Source.String()}
		}
		out["configs"] = described

		unk, err := adm.DescribeTopics([]string{unknown})
		testkit.Check(err, "DescribeTopics "+unknown)
		if len(unk) == 1 {
			out["describe_unknown"] = code(unk[0].Err)
		}

		out["delete"] = code(adm.DeleteTopic(topic))
		// Deletion reaches the metadata asynchronously on Kafka: wait, bounded.
		for end := time.Now().Add(30 * time.Second); ; {
			topics, err = adm.ListTopics()
			testkit.Check(err, "ListTopics")
			_, still := topics[topic]
			out["listed_after_delete"] = still
			if !still || time.Now().After(end) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		out["delete_unknown"] = code(adm.DeleteTopic(unknown))
		_, out["unknown_listed"] = topics[unknown]
		testkit.Emit(out)
	}
}
