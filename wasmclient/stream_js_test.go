//go:build js

package wasmclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"
	"syscall/js"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/testutil"
)

// testBody yields data in reads of at most step bytes, then err (io.EOF
// when nil); Read blocks after the data when block is set, until Close.
type testBody struct {
	data   []byte
	step   int
	err    error
	block  bool
	closed atomic.Bool
	reads  atomic.Int64 // Reads that returned bytes
	stop   chan struct{}
}

func newTestBody(data []byte, step int, err error, block bool) *testBody {
	return &testBody{data: data, step: step, err: err, block: block, stop: make(chan struct{})}
}

func (b *testBody) Read(p []byte) (int, error) {
	if len(b.data) == 0 {
		if b.block {
			<-b.stop
			return 0, ErrClosed
		}
		if b.err != nil {
			return 0, b.err
		}
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), b.step)], b.data)
	b.data = b.data[n:]
	b.reads.Add(1)
	return n, nil
}

func (b *testBody) Close() error {
	if !b.closed.Swap(true) {
		close(b.stop)
	}
	return nil
}

// readAll reads a JS ReadableStream to its end and returns its bytes, or
// the error it ended with.
func readAll(t *testing.T, stream js.Value) ([]byte, error) {
	t.Helper()
	chunks, err := readChunks(stream.Call("getReader"))
	return bytes.Join(chunks, nil), err
}

// readChunks reads the stream of reader rd to its end and returns the
// chunks it gave, or the error it ended with.
func readChunks(rd js.Value) ([][]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out [][]byte
	for {
		res, err := await(ctx, rd.Call("read"))
		if err != nil {
			return out, err
		}
		if res.Get("done").Bool() {
			return out, nil
		}
		v := res.Get("value")
		b := make([]byte, v.Get("byteLength").Int())
		js.CopyBytesToGo(b, v)
		out = append(out, b)
	}
}

func testData(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + i/977)
	}
	return b
}

func TestBodyStreamDelivers(t *testing.T) {
	s := newBodyStreams(1000, 3000, nopLogger{})
	data := testData(100_000)
	body := newTestBody(data, 700, nil, false)
	got, err := readAll(t, s.New(body, int64(len(data))))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("%d bytes (want %d), %v", len(got), len(data), err)
	}
	if !body.closed.Load() {
		t.Error("body not closed at the end")
	}
}

// A stream's chunks are at most a block until a read filled one, then grow
// with the read-ahead up to the chunk size: every byte arrives, in order,
// in chunks of the sizes the body's reads gave.
func TestBodyStreamChunksGrow(t *testing.T) {
	const chunk = 4 * firstChunk
	s := newBodyStreams(chunk, chunk, nopLogger{})
	data := testData(3*chunk + 12345)
	stream := s.New(newTestBody(data, 2*chunk, nil, false), int64(len(data)))
	chunks, err := readChunks(stream.Call("getReader"))
	if err != nil {
		t.Fatal(err)
	}
	got := bytes.Join(chunks, nil)
	var sizes []int
	for _, c := range chunks {
		sizes = append(sizes, len(c))
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("%d bytes, not the body's %d", len(got), len(data))
	}
	if len(sizes) < 2 || sizes[0] != firstChunk || !slices.Contains(sizes, chunk) || !slices.IsSorted(sizes[:len(sizes)-1]) {
		t.Fatalf("chunk sizes %v, want %d first, growing to %d", sizes, firstChunk, chunk)
	}
}

// Until the page has taken the first chunk, the pump reads no further: the
// worker's thread, which also carries the browser's own work of handing the
// response to the page, stays free for it, instead of verifying the next
// bytes of the same response meanwhile. Once the first chunk is taken, the
// pump reads ahead a quarter of its read-ahead bound, the page not reading;
// as the page reads, as far ahead as the page took so far, up to the bound. A page that stops reading (a media element that has its
// metadata) leaves the rest unread: not verified, not paid for.
func TestBodyStreamWaitsForTheFirstRead(t *testing.T) {
	s := newBodyStreams(1000, 100_000, nopLogger{})
	data := testData(300_000)
	body := newTestBody(data, 1000, nil, false)
	rd := s.New(body, int64(len(data))).Call("getReader")
	testutil.Eventually(t, 10*time.Second, "the pump's first read", func() bool { return body.reads.Load() >= 1 })
	// A pump that reads ahead does it now: the thread is free, the queue
	// has room for the whole body.
	time.Sleep(100 * time.Millisecond)
	if n := body.reads.Load(); n != 1 {
		t.Fatalf("the pump read %d times before the page took the first chunk; want 1", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	read := rd.Call("read")
	// The read calls the stream's pull, which wakes the pump: it reads on
	// only after this read's answer went to the page, not inside it.
	if n := body.reads.Load(); n != 1 {
		t.Fatalf("the pump read %d times inside the page's read of the first chunk; want 1", n)
	}
	res, err := await(ctx, read)
	if err != nil {
		t.Fatal(err)
	}
	v := res.Get("value")
	got := make([]byte, v.Get("byteLength").Int())
	js.CopyBytesToGo(got, v)

	// readsSettle waits for the pump to have read want times in all, then
	// checks that it reads no further while the page does not read.
	readsSettle := func(what string, want int64) {
		t.Helper()
		testutil.EventuallyErr(t, 10*time.Second, what, func() error {
			if n := body.reads.Load(); n < want {
				return fmt.Errorf("%d reads of %d", n, want)
			}
			return nil
		})
		time.Sleep(100 * time.Millisecond)
		if n := body.reads.Load(); n != want {
			t.Fatalf("%s: the pump read %d times, want %d: it reads further than its read-ahead with the page not reading", what, n, want)
		}
	}
	readChunk := func() {
		t.Helper()
		res, err := await(ctx, rd.Call("read"))
		if err != nil || res.Get("done").Bool() {
			t.Fatalf("read: done %v, %v", res.Get("done").Bool(), err)
		}
		v := res.Get("value")
		b := make([]byte, v.Get("byteLength").Int())
		js.CopyBytesToGo(b, v)
		got = append(got, b...)
	}
	// Reads of 1000 bytes: the first chunk, then as many as the page took
	// (at least 25, at most 100).
	readsSettle("the pump to read a quarter of its read-ahead, the page not reading", 1+25)
	for range 25 {
		readChunk()
	}
	readsSettle("the pump to read as far ahead as the page took", 26+26)
	for range 26 {
		readChunk()
	}
	readsSettle("the pump to read as far ahead as the page took", 52+52)
	for range 52 {
		readChunk()
	}
	readsSettle("the pump to read ahead to its bound", 104+100)
	chunks, err := readChunks(rd)
	if err != nil {
		t.Fatal(err)
	}
	if got := append(got, bytes.Join(chunks, nil)...); !bytes.Equal(got, data) {
		t.Fatalf("%d bytes (want %d), or not the body's", len(got), len(data))
	}
}

// A body of at most one chunk is not held: the pump reads it to its end
// (and closes it) without waiting for the page, whose wait is for the end.
func TestBodyStreamSmallBodyNotHeld(t *testing.T) {
	s := newBodyStreams(1000, 100_000, nopLogger{})
	data := testData(900)
	body := newTestBody(data, 500, nil, false)
	stream := s.New(body, int64(len(data)))
	testutil.Eventually(t, 10*time.Second, "the pump to read the body to its end, the page not reading", body.closed.Load)
	got, err := readAll(t, stream)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("%d bytes (want %d), %v", len(got), len(data), err)
	}
}

// A body that fails errors the stream: the page never sees a clean end.
func TestBodyStreamErrorIsNotTruncation(t *testing.T) {
	s := newBodyStreams(1000, 3000, nopLogger{})
	data := testData(10_000)
	body := newTestBody(data, 1000, ErrNoSource, false)
	got, err := readAll(t, s.New(body, int64(len(data))))
	if err == nil {
		t.Fatalf("stream ended cleanly after %d bytes; want an error", len(got))
	}
	// Erroring drops what is still queued: the page sees a prefix, then the error.
	if !bytes.HasPrefix(data, got) {
		t.Errorf("the %d bytes before the error are not a prefix of the body", len(got))
	}
}

// Cancelling the stream closes the body, unblocking a pending Read, and
// ends the pump (the goroutine check in TestMain catches a leak).
func TestBodyStreamCancel(t *testing.T) {
	s := newBodyStreams(1000, 3000, nopLogger{})
	body := newTestBody(testData(5000), 1000, nil, true)
	stream := s.New(body, -1)
	rd := stream.Call("getReader")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := await(ctx, rd.Call("read")); err != nil {
		t.Fatal(err)
	}
	if _, err := await(ctx, rd.Call("cancel")); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyErr(t, 10*time.Second, "the pumps to end and the body to close after cancel", func() error {
		s.mu.Lock()
		left := len(s.pumps)
		s.mu.Unlock()
		if left == 0 && body.closed.Load() {
			return nil
		}
		return fmt.Errorf("%d pumps left, body closed %v", left, body.closed.Load())
	})
}

// jsStream returns a JS ReadableStream (a byte stream when bytesType) that
// yields chunks, then closes or, with fail, errors.
func jsStream(t *testing.T, chunks [][]byte, bytesType, fail bool) js.Value {
	t.Helper()
	i := 0
	var pull js.Func
	pull = js.FuncOf(func(_ js.Value, args []js.Value) any {
		ctrl := args[0]
		if i < len(chunks) {
			ctrl.Call("enqueue", bytesToJS(chunks[i]))
			i++
			return nil
		}
		if fail {
			ctrl.Call("error", jsErrorCtor.New("injected"))
		} else {
			ctrl.Call("close")
			if bytesType && ctrl.Get("byobRequest").Truthy() {
				ctrl.Get("byobRequest").Call("respond", 0)
			}
		}
		return nil
	})
	t.Cleanup(pull.Release)
	src := map[string]any{"pull": pull}
	if bytesType {
		src["type"] = "bytes"
	}
	return js.Global().Get("ReadableStream").New(src)
}

func TestStreamReader(t *testing.T) {
	data := testData(1_500_000)
	var chunks [][]byte
	for off, i := 0, 0; off < len(data); i++ {
		n := min(len(data)-off, []int{1, 40_000, 300_000, 7, 65_536}[i%5])
		chunks = append(chunks, data[off:off+n])
		off += n
	}
	for _, tc := range []struct {
		name       string
		bytesType  bool
		wantBYOB   bool
		bufferSize int
	}{
		{"byte stream", true, true, 100_000},
		{"byte stream, small reads", true, true, 1000},
		{"default stream", false, false, 100_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rd, err := newStreamReader(jsStream(t, chunks, tc.bytesType, false), nil)
			if err != nil {
				t.Fatal(err)
			}
			if rd.byob != tc.wantBYOB {
				t.Errorf("byob %v, want %v", rd.byob, tc.wantBYOB)
			}
			got, err := io.ReadAll(bufioSize(rd, tc.bufferSize))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%d bytes (want %d), %v", len(got), len(data), err)
			}
			_ = rd.Close()
		})
		t.Run(tc.name+", error", func(t *testing.T) {
			rd, err := newStreamReader(jsStream(t, chunks[:3], tc.bytesType, true), nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.ReadAll(bufioSize(rd, tc.bufferSize))
			var je *JSError
			if !errors.As(err, &je) || je.Message != "injected" {
				t.Fatalf("err %v, want the stream's error", err)
			}
			_ = rd.Close()
		})
	}
}

// bufioSize reads r through reads of at most n bytes.
func bufioSize(r io.Reader, n int) io.Reader { return &smallReads{r: r, n: n} }

type smallReads struct {
	r io.Reader
	n int
}

func (s *smallReads) Read(p []byte) (int, error) { return s.r.Read(p[:min(len(p), s.n)]) }

// Every stream's bytes cross through the one staging buffer (jsio_js.go),
// which grows to the largest read or chunk: streams to the page and
// readers from the network running at once, each with reads and chunks of
// other sizes (so one grows the stage while the others use it), each get
// exactly their own bytes, and a failing one ends in its error after a
// prefix of its own.
func TestStagedStreamsKeepTheirBytes(t *testing.T) {
	const streams = 6
	type result struct {
		name string
		want []byte
		got  []byte
		err  error
		fail bool
	}
	results := make(chan result, 2*streams)
	for i := range streams {
		data := testData(300_000 + 70_001*i)
		for j := range data {
			data[j] ^= byte(i * 41) // no two streams carry the same bytes
		}
		// To the page: a pump whose body reads step bytes at a time.
		chunk, step := 4_000*(i+1), 1_000+2_500*i
		fail := i%3 == 2
		var berr error
		if fail {
			berr = ErrNoSource
		}
		s := newBodyStreams(chunk, 2*chunk, nopLogger{})
		stream := s.New(newTestBody(data, step, berr, false), int64(len(data)))
		go func() {
			chunks, err := readChunks(stream.Call("getReader"))
			results <- result{fmt.Sprintf("page stream %d", i), data, bytes.Join(chunks, nil), err, fail}
		}()
		// From the network: a reader of a JS stream of chunks of other sizes.
		var parts [][]byte
		for off := 0; off < len(data); {
			n := min(len(data)-off, 3_000+40_000*((off/7_000+i)%5))
			parts = append(parts, data[off:off+n])
			off += n
		}
		rd, err := newStreamReader(jsStream(t, parts, i%2 == 0, fail), nil)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			defer rd.Close()
			got, err := io.ReadAll(bufioSize(rd, 50_000+i))
			results <- result{fmt.Sprintf("network stream %d", i), data, got, err, fail}
		}()
	}
	for range 2 * streams {
		var r result
		select {
		case r = <-results:
		case <-time.After(testutil.Scale(30 * time.Second)):
			t.Fatal("the streams did not all end")
		}
		switch {
		case r.fail && r.err == nil:
			t.Errorf("%s: ended cleanly after %d bytes; want its error", r.name, len(r.got))
		case !r.fail && r.err != nil:
			t.Errorf("%s: %v", r.name, r.err)
		case r.fail && !bytes.HasPrefix(r.want, r.got):
			t.Errorf("%s: the %d bytes before the error are not a prefix of its own", r.name, len(r.got))
		case !r.fail && !bytes.Equal(r.got, r.want):
			t.Errorf("%s: %d bytes (want %d), or not its own", r.name, len(r.got), len(r.want))
		}
	}
}

// Readers that ended leave their read buffers to the next readers (each
// segment of a large file is a new stream): rounds of readers running at
// once, over byte streams, each get exactly their bytes, the buffers are
// pooled, and the pool stays bounded.
func TestStreamReaderBuffersPooled(t *testing.T) {
	const perRound = 4
	for round := range 3 {
		errs := make(chan error, perRound)
		for i := range perRound {
			data := testData(1_200_000 + 100_003*i)
			for j := range data {
				data[j] ^= byte(round*perRound + i)
			}
			var parts [][]byte
			for off := 0; off < len(data); {
				n := min(len(data)-off, 200_000+3_001*i)
				parts = append(parts, data[off:off+n])
				off += n
			}
			rd, err := newStreamReader(jsStream(t, parts, true, false), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !rd.byob {
				t.Fatal("a byte stream got a default reader")
			}
			go func() {
				defer rd.Close()
				got, err := io.ReadAll(rd)
				if err == nil && !bytes.Equal(got, data) {
					err = fmt.Errorf("reader %d of round %d: %d bytes (want %d), or not its own", i, round, len(got), len(data))
				}
				errs <- err
			}()
		}
		for range perRound {
			select {
			case err := <-errs:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(testutil.Scale(30 * time.Second)):
				t.Fatal("the readers did not all end")
			}
		}
		// Three buffer sizes, at most three of each.
		if n := jsIO.Call("pooled").Int(); n == 0 || n > 9 {
			t.Fatalf("after round %d, %d buffers pooled; want 1 to 9", round, n)
		}
	}
}

// A reader whose read throws instead of rejecting (a stream the browser
// already tore down, say) fails the Read with that error; the worker does
// not panic.
func TestStreamReaderReadThrows(t *testing.T) {
	readable := js.Global().Get("Function").New(`return {
		getReader(opts) {
			if (opts) throw new TypeError('not a byte stream');
			return {read() { throw new Error('torn down'); }, cancel() { return Promise.resolve(); }};
		},
	};`).Invoke()
	rd, err := newStreamReader(readable, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	_, err = rd.Read(make([]byte, 100))
	var je *JSError
	if !errors.As(err, &je) || je.Message != "torn down" {
		t.Fatalf("err %v, want the read's error", err)
	}
}

// A stream errored with no reason (undefined) fails the Read, not a loop
// of reads that never return.
func TestStreamReaderReadRejectsUndefined(t *testing.T) {
	readable := js.Global().Get("Function").New(`return {
		getReader(opts) {
			if (opts) throw new TypeError('not a byte stream');
			return {read() { return Promise.reject(undefined); }, cancel() { return Promise.resolve(); }};
		},
	};`).Invoke()
	rd, err := newStreamReader(readable, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	done := make(chan error, 1)
	go func() {
		_, err := rd.Read(make([]byte, 100))
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Read of a stream errored with undefined returned no error")
		}
	case <-time.After(testutil.Scale(10 * time.Second)):
		t.Fatal("Read of a stream errored with undefined did not return")
	}
}
