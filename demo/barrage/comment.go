package barrage

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits of a comment.
const (
	// MaxTextRunes is the longest comment text kept after normalisation; longer text is cut (with "…").
	MaxTextRunes = 140
	// MaxMessageBytes bounds a comment message on the wire (JSON); larger bodies are rejected as malformed.
	MaxMessageBytes = 16 << 10
)

// ErrMalformed is wrapped by every error about a comment message that cannot be processed.
var ErrMalformed = errors.New("malformed comment")

// Comment is one bullet comment as the HomePage publishes it (the message body, JSON).
type Comment struct {
	// ID is unique per comment: "<run>-<seq>".
	ID string `json:"id"`
	// Run names the Send that produced it; Seq is its number in that run (0-based).
	Run string `json:"run"`
	Seq int    `json:"seq"`
	// Text is what the person typed.
	Text string `json:"text"`
	// SentNs is when the page published it (Unix nanoseconds).
	SentNs int64 `json:"sentNs"`
	// TraceParent is the W3C traceparent of the comment's trace (span "sender"), also carried as the message's
	// traceparent property.
	TraceParent string `json:"traceparent,omitempty"`
}

// ParseComment decodes and checks a comment message.
func ParseComment(b []byte) (Comment, error) {
	var c Comment
	if len(b) > MaxMessageBytes {
		return c, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(b), MaxMessageBytes)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	switch {
	case c.ID == "" || len(c.ID) > 200:
		return c, fmt.Errorf("%w: id must be 1 to 200 bytes", ErrMalformed)
	case !utf8.ValidString(c.Text) || !utf8.ValidString(c.ID) || !utf8.ValidString(c.Run):
		return c, fmt.Errorf("%w: not UTF-8", ErrMalformed)
	case c.Seq < 0:
		return c, fmt.Errorf("%w: seq %d < 0", ErrMalformed, c.Seq)
	}
	if c.TraceParent != "" && !ValidTraceParent(c.TraceParent) {
		c.TraceParent = "" // a bad trace context is dropped, not fatal: the comment still counts
	}
	return c, nil
}

// Normalise is the processor's clean-up of a comment's text: Unicode spaces and control characters become single
// spaces, leading and trailing space is trimmed, and the text is cut to MaxTextRunes.
func Normalise(s string) string {
	var b strings.Builder
	space := false
	n := 0
	for _, r := range s {
		if unicode.Is(unicode.Cf, r) { // zero-width and format characters vanish
			continue
		}
		if r == utf8.RuneError || unicode.IsSpace(r) || unicode.IsControl(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			space = false
			if n+1 >= MaxTextRunes {
				return b.String() + "…"
			}
			b.WriteByte(' ')
			n++
		}
		if n == MaxTextRunes {
			return b.String() + "…"
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// DefaultBlockedWords are masked by Filter unless the processor is configured with its own list.
var DefaultBlockedWords = []string{"spam", "scam", "idiot", "stupid"}

// Filter masks each blocked word (case-insensitive, whole words of letters and digits) with asterisks, one per
// rune, and reports how many it masked.
func Filter(s string, blocked map[string]bool) (string, int) {
	if len(blocked) == 0 {
		return s, 0
	}
	rs := []rune(s)
	masked := 0
	for i := 0; i < len(rs); {
		if !isWordRune(rs[i]) {
			i++
			continue
		}
		j := i
		for j < len(rs) && isWordRune(rs[j]) {
			j++
		}
		if blocked[strings.ToLower(string(rs[i:j]))] {
			for k := i; k < j; k++ {
				rs[k] = '*'
			}
			masked++
		}
		i = j
	}
	if masked == 0 {
		return s, 0
	}
	return string(rs), masked
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// BlockedSet builds Filter's set from a comma-separated list (empty: DefaultBlockedWords).
func BlockedSet(list string) map[string]bool {
	words := DefaultBlockedWords
	if strings.TrimSpace(list) != "" {
		words = strings.Split(list, ",")
	}
	m := make(map[string]bool, len(words))
	for _, w := range words {
		if w = strings.ToLower(strings.TrimSpace(w)); w != "" {
			m[w] = true
		}
	}
	return m
}

// Result is a processed comment: one row of the table.
type Result struct {
	ID          string `json:"id"`
	Run         string `json:"run"`
	Seq         int    `json:"seq"`
	Text        string `json:"text"`     // as sent
	Shown       string `json:"shown"`    // normalised and filtered: what the stage shows
	Filtered    int    `json:"filtered"` // words masked
	SentNs      int64  `json:"sentNs"`
	ProcessedNs int64  `json:"processedNs"`
	Instance    string `json:"instance"` // the processor instance (its POD_NAME)
	TraceID     string `json:"traceId,omitempty"`
}

// Process turns a comment into its result (without ProcessedNs and Instance, which the caller stamps).
func Process(c Comment, blocked map[string]bool) Result {
	shown, n := Filter(Normalise(c.Text), blocked)
	return Result{ID: c.ID, Run: c.Run, Seq: c.Seq, Text: c.Text, Shown: shown, Filtered: n, SentNs: c.SentNs,
		TraceID: TraceID(c.TraceParent)}
}

// Latency is the comment's end-to-end time from sent to processed.
func (r Result) Latency() time.Duration { return time.Duration(r.ProcessedNs - r.SentNs) }
