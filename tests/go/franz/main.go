// franz runs franz-go (kgo, kadm) against a broker for the Sluice tests.
//
// Usage:
//
//	franz create    BOOTSTRAP TOPIC PARTITIONS [--config K=V ...]
//	franz produce   BOOTSTRAP TOPIC [--count N] [--seed S]
//	franz consume   BOOTSTRAP TOPIC
//	franz member    BOOTSTRAP TOPIC GROUP --name N --stop-file PATH
//	                [--session-timeout-ms MS] [--protocol classic|consumer]
//	franz committed BOOTSTRAP TOPIC GROUP
//	franz admin     BOOTSTRAP PREFIX
//
// Each prints one JSON object on stdout and exits non-zero on any client
// error; `member` prints one JSON event per line instead (testkit.Member)
// until PATH exists, then commits, leaves the group and exits. Every
// command also takes --timeout SECONDS (its overall deadline).
// SLUICE_TEST_GO_LOG=info|debug shows the client's log on stderr.
package main

import (
	"flag"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"sluice/tests/go/internal/testkit"
)

const clientID = "sluice-test-franz"

type command struct {
	positional int
	usage      string
	run        func(pos []string, fs *flag.FlagSet, timeout *int) func()
}

var commands = map[string]command{
	"create":    {3, "create BOOTSTRAP TOPIC PARTITIONS [--config K=V ...]", cmdCreate},
	"produce":   {2, "produce BOOTSTRAP TOPIC [--count N] [--seed S]", cmdProduce},
	"consume":   {2, "consume BOOTSTRAP TOPIC", cmdConsume},
	"member":    {3, "member BOOTSTRAP TOPIC GROUP --name N --stop-file PATH", cmdMember},
	"committed": {3, "committed BOOTSTRAP TOPIC GROUP", cmdCommitted},
	"admin":     {2, "admin BOOTSTRAP PREFIX", cmdAdmin},
}

func main() {
	if len(os.Args) < 2 {
		testkit.Fail("usage: franz COMMAND BOOTSTRAP ... (create, produce, consume, member, committed, admin)")
	}
	c, ok := commands[os.Args[1]]
	if !ok {
		testkit.Fail("unknown command %q", os.Args[1])
	}
	pos, rest := testkit.Positional(os.Args[2:], c.positional, "franz "+c.usage)
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	timeout := fs.Int("timeout", 90, "overall deadline in seconds")
	body := c.run(pos, fs, timeout)
	testkit.Check(fs.Parse(rest), "parsing flags")
	if fs.NArg() > 0 {
		testkit.Fail("unexpected arguments %v", fs.Args())
	}
	body()
}

// client is a kgo client for bootstrap; nothing overrides the producer's
// defaults (idempotent, acks=all).
func client(bootstrap string, opts ...kgo.Opt) *kgo.Client {
	base := []kgo.Opt{kgo.SeedBrokers(bootstrap), kgo.ClientID(clientID)}
	if lvl := os.Getenv("SLUICE_TEST_GO_LOG"); lvl != "" {
		levels := map[string]kgo.LogLevel{
			"error": kgo.LogLevelError, "warn": kgo.LogLevelWarn, "info": kgo.LogLevelInfo, "debug": kgo.LogLevelDebug,
		}
		level, ok := levels[strings.ToLower(lvl)]
		if !ok {
			testkit.Fail("SLUICE_TEST_GO_LOG=%s: want error, warn, info or debug", lvl)
		}
		base = append(base, kgo.WithLogger(kgo.BasicLogger(os.Stderr, level, nil)))
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	testkit.Check(err, "creating the kgo client")
	return cl
}
