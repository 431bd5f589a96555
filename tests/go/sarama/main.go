// sarama runs IBM/sarama against a broker for the Sluice tests.
//
// Usage:
//
//	sarama produce   BOOTSTRAP TOPIC [--count N] [--seed S]
//	sarama member    BOOTSTRAP TOPIC GROUP --name N --stop-file PATH [--session-timeout-ms MS]
//	sarama committed BOOTSTRAP TOPIC GROUP
//	sarama admin     BOOTSTRAP PREFIX
//
// Every command takes --version default|X.Y.Z (sarama's config.Version,
// from which it picks its request versions; "default" keeps NewConfig's)
// and --timeout SECONDS (the overall deadline). Each prints one JSON object
// on stdout and exits non-zero on any client error; `member` prints one
// JSON event per line instead (testkit.Member) until PATH exists, then
// commits, leaves the group and exits. SLUICE_TEST_GO_LOG=1 shows sarama's
// log on stderr.
package main

import (
	"flag"
	"log"
	"os"

	"github.com/IBM/sarama"

	"sluice/tests/go/internal/testkit"
)

type command struct {
	positional int
	usage      string
	run        func(pos []string, fs *flag.FlagSet, opts *options) func()
}

type options struct {
	timeout *int
	version *string
}

var commands = map[string]command{
	"produce":   {2, "produce BOOTSTRAP TOPIC [--count N] [--seed S]", cmdProduce},
	"member":    {3, "member BOOTSTRAP TOPIC GROUP --name N --stop-file PATH", cmdMember},
	"committed": {3, "committed BOOTSTRAP TOPIC GROUP", cmdCommitted},
	"admin":     {2, "admin BOOTSTRAP PREFIX", cmdAdmin},
}

func main() {
	if len(os.Args) < 2 {
		testkit.Fail("usage: sarama COMMAND BOOTSTRAP ... (produce, member, committed, admin)")
	}
	c, ok := commands[os.Args[1]]
	if !ok {
		testkit.Fail("unknown command %q", os.Args[1])
	}
	pos, rest := testkit.Positional(os.Args[2:], c.positional, "sarama "+c.usage)
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	opts := &options{
		timeout: fs.Int("timeout", 90, "overall deadline in seconds"),
		version: fs.String("version", "default", "sarama config.Version: default or X.Y.Z"),
	}
	body := c.run(pos, fs, opts)
	testkit.Check(fs.Parse(rest), "parsing flags")
	if fs.NArg() > 0 {
		testkit.Fail("unexpected arguments %v", fs.Args())
	}
	if os.Getenv("SLUICE_TEST_GO_LOG") != "" {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.Lmicroseconds)
	}
	body()
}

// config is sarama's default configuration with the chosen Version.
func (o *options) config() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = "sluice-test-sarama"
	if *o.version != "default" {
		v, err := sarama.ParseKafkaVersion(*o.version)
		testkit.Check(err, "--version")
		cfg.Version = v
	}
	return cfg
}
