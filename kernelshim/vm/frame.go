package vm

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"regexp"
	"strconv"
	"time"
)

// The guest reports to the host in frames, each self-delimiting and
// checksummed so that they survive a channel shared with kernel log lines
// (the console, under vng) and partial lines:
//
//	@@SC1:<seq>:<kind>:<base64 JSON payload>:<crc32 of the base64, hex>@@
//
// seq counts from 0 with no gaps; a frame whose checksum fails, or a gap in
// seq, is a transport error, never silently skipped. A payload of
// compressMin bytes or more is gzip-compressed before base64 (JSON never
// starts with gzip's magic bytes, so the reader tells them apart): the
// serial line is the bottleneck, host to guest above all.
const framePrefix = "@@SC1:"

// compressMin is the smallest JSON payload a frameWriter compresses.
const compressMin = 256

// frameRE finds frames anywhere in a line: printk may have written before
// or after one on the same line.
var frameRE = regexp.MustCompile(`@@SC1:(\d+):([a-z]+):([A-Za-z0-9+/=]*):([0-9a-f]{8})@@`)

// Frame kinds. A batch guest (Run) writes hello, then a trace frame per
// trace and done. A session guest (Session) writes hello and ready, then
// answers each run frame the host writes to its ttyS1 with a trace frame
// of the same id. Either may end with fatal instead. Each direction
// numbers its own frames.
const (
	kindHello = "hello" // helloPayload: the guest is up
	kindTrace = "trace" // tracePayload: one trace's observations
	kindFatal = "fatal" // fatalPayload: the guest cannot go on
	kindDone  = "done"  // donePayload: every trace has been reported
	kindReady = "ready" // readyPayload: a session guest takes requests
	kindRun   = "run"   // runPayload: host to guest, run one trace
)

type helloPayload struct {
	Release string   `json:"release"`           // uname -r
	Version string   `json:"version"`           // uname -v
	Modules []string `json:"modules,omitempty"` // /proc/modules, oldest first: the --module ones loaded so far
}

type obsPayload struct {
	Line    int    `json:"line"`
	Op      string `json:"op"`
	N       int64  `json:"n"`
	Err     int    `json:"err,omitempty"`
	Word    string `json:"word,omitempty"`
	Data    []byte `json:"data,omitempty"`
	HasData bool   `json:"has_data,omitempty"`
	Note    string `json:"note,omitempty"`
}

type tracePayload struct {
	Index int          `json:"index"` // position in the host's list; a session's request id
	File  string       `json:"file"`
	Obs   []obsPayload `json:"obs"`
	Error string       `json:"error,omitempty"` // the run failed as a whole
	// Warnings are the warnings the guest's kernel logged while the
	// trace ran (kernelshim.Kmsg: WARN splats, BUGs, "TCP recvmsg seq
	// # bug"), each as its message.
	Warnings []string `json:"warnings,omitempty"`
}

type fatalPayload struct {
	Kind  string `json:"kind"` // "nosockmap", "module", "setup", "transport", ...
	Error string `json:"error"`
	// Module is the refused module's position in Config.Modules (kind
	// "module").
	Module int `json:"module,omitempty"`
}

type readyPayload struct{}

// runPayload asks a session guest to run one trace.
type runPayload struct {
	ID     int    `json:"id"`     // echoed as the trace frame's index
	File   string `json:"file"`   // for the guest's error messages
	Source string `json:"source"` // the trace, trace.Format'ted
	// The options the host resolved (trace.ResolveOptions).
	Profile   string        `json:"profile"`
	OpTimeout time.Duration `json:"op_timeout"`
	Seed      uint64        `json:"seed,omitempty"`
	TimeScale int           `json:"time_scale,omitempty"`
	// Fault plants a failure in the guest while it serves this request
	// ("panic", "hang"); tests only.
	Fault string `json:"fault,omitempty"`
}

type donePayload struct {
	Count int `json:"count"`
}

// frameWriter writes numbered frames.
type frameWriter struct {
	w   io.Writer
	seq int
}

func (fw *frameWriter) write(kind string, v any) error {
	js, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s frame: %w", kind, err)
	}
	if len(js) >= compressMin {
		var z bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&z, gzip.BestSpeed)
		zw.Write(js)
		zw.Close()
		js = z.Bytes()
	}
	b64 := base64.StdEncoding.EncodeToString(js)
	line := fmt.Sprintf("\n%s%d:%s:%s:%08x@@\n", framePrefix, fw.seq, kind, b64, crc32.ChecksumIEEE([]byte(b64)))
	fw.seq++
	if _, err := io.WriteString(fw.w, line); err != nil {
		return fmt.Errorf("write %s frame: %w", kind, err)
	}
	return nil
}

type frame struct {
	seq     int
	kind    string
	payload []byte // JSON
}

// frameReader extracts frames from a noisy stream, keeping the other lines
// (the console) for error reports.
type frameReader struct {
	sc   *bufio.Scanner
	next int
	// Noise receives every line that is not entirely a frame.
	Noise func(line string)
}

func newFrameReader(r io.Reader) *frameReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	return &frameReader{sc: sc}
}

// read returns the next frame, io.EOF at the end of the stream, or an error
// for a corrupt frame or a gap in the sequence.
func (fr *frameReader) read() (frame, error) {
	for fr.sc.Scan() {
		line := fr.sc.Bytes()
		m := frameRE.FindSubmatchIndex(line)
		if m == nil {
			if bytes.Contains(line, []byte(framePrefix)) {
				return frame{}, fmt.Errorf("%w: damaged frame %.80q", ErrTransport, line)
			}
			if fr.Noise != nil && len(bytes.TrimSpace(line)) > 0 {
				fr.Noise(string(line))
			}
			continue
		}
		if fr.Noise != nil {
			if rest := bytes.TrimSpace(append(append([]byte(nil), line[:m[0]]...), line[m[1]:]...)); len(rest) > 0 {
				fr.Noise(string(rest))
			}
		}
		seq, _ := strconv.Atoi(string(line[m[2]:m[3]]))
		kind := string(line[m[4]:m[5]])
		b64 := line[m[6]:m[7]]
		sum, _ := strconv.ParseUint(string(line[m[8]:m[9]]), 16, 32)
		if crc32.ChecksumIEEE(b64) != uint32(sum) {
			return frame{}, fmt.Errorf("%w: frame %d (%s) fails its checksum", ErrTransport, seq, kind)
		}
		if seq != fr.next {
			return frame{}, fmt.Errorf("%w: frame %d arrived, expected %d", ErrTransport, seq, fr.next)
		}
		fr.next++
		js, err := base64.StdEncoding.DecodeString(string(b64))
		if err == nil && len(js) >= 2 && js[0] == 0x1f && js[1] == 0x8b {
			var zr *gzip.Reader
			if zr, err = gzip.NewReader(bytes.NewReader(js)); err == nil {
				js, err = io.ReadAll(zr)
			}
		}
		if err != nil {
			return frame{}, fmt.Errorf("%w: frame %d: %w", ErrTransport, seq, err)
		}
		return frame{seq: seq, kind: kind, payload: js}, nil
	}
	if err := fr.sc.Err(); err != nil {
		return frame{}, fmt.Errorf("read guest output: %w", err)
	}
	return frame{}, io.EOF
}
