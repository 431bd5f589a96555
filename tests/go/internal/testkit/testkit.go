// Package testkit is what the Go client programs share: the records they
// send, how they print them (the format of tests/clients/_records.py, which
// tests/common/records.rs reads), argument parsing, and failing loudly.
package testkit

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Header is one record header; a nil Value is a null header value.
type Header struct {
	Key   string
	Value []byte
}

// Record is the content of test record number i.
type Record struct {
	Key       []byte // nil: a null key
	Value     []byte // nil: a null value
	Headers   []Header
	Timestamp time.Time
}

// Make returns record i of the sequence named by seed: null keys, null and
// empty values, binary values of varied length, zero to two headers (one
// with a null value), repeated keys so keyed records share partitions.
// baseMs is the first record's timestamp; record i gets baseMs + i.
func Make(seed string, i int, baseMs int64) Record {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s:%d", seed, i)
	r := rand.New(rand.NewSource(int64(h.Sum64())))
	var rec Record
	if i%50 != 7 {
		rec.Key = []byte(fmt.Sprintf("key-%d", i%97))
	}
	switch {
	case i%211 == 5:
		rec.Value = nil
	case i%101 == 3:
		rec.Value = []byte{}
	default:
		text := strings.Repeat(fmt.Sprintf("record %d of seed %s; ", i, seed), r.Intn(13))
		bin := make([]byte, r.Intn(97))
		r.Read(bin)
		rec.Value = append([]byte(text), bin...)
	}
	switch i % 3 {
	case 1:
		rec.Headers = []Header{{Key: "i", Value: []byte(strconv.Itoa(i))}}
	case 2:
		rec.Headers = []Header{{Key: "bin", Value: []byte{0, 1, byte(i)}}, {Key: "null", Value: nil}}
	}
	rec.Timestamp = time.UnixMilli(baseMs + int64(i))
	return rec
}

// BaseMs is a timestamp a little in the past, so that brokers that bound
// how far timestamps may lie in the future or past accept every record.
func BaseMs() int64 {
	return time.Now().Add(-time.Minute).UnixMilli()
}

func hexOrNull(b []byte) any {
	if b == nil {
		return nil
	}
	return hex.EncodeToString(b)
}

// Rec is a record as the Rust side reads it:
// [partition, offset, key_hex|null, value_hex|null, [[hk, hv_hex|null]...], timestamp_ms].
func Rec(partition int32, offset int64, key, value []byte, headers []Header, ts time.Time) []any {
	hs := make([]any, 0, len(headers))
	for _, h := range headers {
		hs = append(hs, []any{h.Key, hexOrNull(h.Value)})
	}
	return []any{partition, offset, hexOrNull(key), hexOrNull(value), hs, ts.UnixMilli()}
}

var stdout sync.Mutex

// Emit prints v as one line of JSON on stdout (whole lines, also when
// several goroutines emit: a long line is more than one write).
func Emit(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		Fail("encoding JSON: %v", err)
	}
	stdout.Lock()
	defer stdout.Unlock()
	if _, err := os.Stdout.Write(append(b, '\n')); err != nil {
		os.Exit(1)
	}
}

// Log writes a diagnostic line on stderr.
func Log(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
}

// Fail reports a client error on stderr and exits non-zero.
func Fail(format string, args ...any) {
	Log("FAILED: "+format, args...)
	os.Exit(1)
}

// Check fails on a non-nil error, naming what was being done.
func Check(err error, what string) {
	if err != nil {
		Fail("%s: %v", what, err)
	}
}

// Deadline bounds the whole program: the returned context ends after
// seconds, and the process exits non-zero a little later if a call ignores
// it.
func Deadline(seconds int) context.Context {
	ctx, _ := context.WithTimeout(context.Background(), time.Duration(seconds)*time.Second)
	go func() {
		<-ctx.Done()
		time.Sleep(10 * time.Second)
		Fail("overall deadline of %ds passed", seconds)
	}()
	return ctx
}

// Positional returns the first n arguments after the command, failing with
// usage if there are fewer; the rest are flags.
func Positional(args []string, n int, usage string) ([]string, []string) {
	if len(args) < n {
		Fail("usage: %s", usage)
	}
	return args[:n], args[n:]
}

// PartOffsets parses repeated "P:OFFSET" values.
type PartOffsets map[int32]int64

func (p PartOffsets) String() string { return fmt.Sprint(map[int32]int64(p)) }

func (p PartOffsets) Set(s string) error {
	ps, os, ok := strings.Cut(s, ":")
	if !ok {
		return fmt.Errorf("want P:OFFSET, got %q", s)
	}
	part, err := strconv.ParseInt(ps, 10, 32)
	if err != nil {
		return err
	}
	off, err := strconv.ParseInt(os, 10, 64)
	if err != nil {
		return err
	}
	p[int32(part)] = off
	return nil
}

// StopRequested reports whether the stop file exists.
func StopRequested(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
