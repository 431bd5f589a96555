package main

import (
	"flag"
	"time"

	"github.com/IBM/sarama"

	"sluice/tests/go/internal/testkit"
)

// bytesOrNil keeps a null key or value null (a nil Encoder), not empty.
func bytesOrNil(b []byte) sarama.Encoder {
	if b == nil {
		return nil
	}
	return sarama.ByteEncoder(b)
}

// cmdProduce sends COUNT records with a SyncProducer (acks=all), in
// batches, and reports the partition and offset sarama returned for each.
func cmdProduce(pos []string, fs *flag.FlagSet, opts *options) func() {
	count := fs.Int("count", 1000, "records to send")
	seed := fs.String("seed", "sarama", "record generator seed")
	return func() {
		testkit.Deadline(*opts.timeout)
		cfg := opts.config()
		cfg.Producer.RequiredAcks = sarama.WaitForAll
		cfg.Producer.Return.Successes = true
		cfg.Producer.Timeout = 30 * time.Second
		p, err := sarama.NewSyncProducer([]string{pos[0]}, cfg)
		testkit.Check(err, "NewSyncProducer")
		base := testkit.BaseMs()
		msgs := make([]*sarama.ProducerMessage, *count)
		gen := make([]testkit.Record, *count)
		for i := range msgs {
			r := testkit.Make(*seed, i, base)
			gen[i] = r
			hs := make([]sarama.RecordHeader, 0, len(r.Headers))
			for _, h := range r.Headers {
				hs = append(hs, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
			}
			msgs[i] = &sarama.ProducerMessage{
				Topic: pos[1], Key: bytesOrNil(r.Key), Value: bytesOrNil(r.Value), Headers: hs, Timestamp: r.Timestamp,
			}
		}
		const batch = 500
		for i := 0; i < len(msgs); i += batch {
			testkit.Check(p.SendMessages(msgs[i:min(i+batch, len(msgs))]), "SendMessages")
		}
		testkit.Check(p.Close(), "closing the producer")
		delivered := make([][]any, len(msgs))
		for i, m := range msgs {
			r := gen[i]
			delivered[i] = testkit.Rec(m.Partition, m.Offset, r.Key, r.Value, r.Headers, r.Timestamp)
		}
		testkit.Emit(map[string]any{"delivered": delivered, "version": cfg.Version.String()})
	}
}
