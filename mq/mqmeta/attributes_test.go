package mqmeta

import (
	"maps"
	"strings"
	"testing"
)

// The cases follow Java's AttributeParser / AttributeUtil (TopicAttributes.ALL), messages word for word.
func TestAttributeChanges(t *testing.T) {
	for _, tc := range []struct {
		create  bool
		current map[string]string
		mod     string
		want    map[string]string
		err     string
	}{
		{create: true, mod: "", want: map[string]string{}},
		{create: true, mod: "+message.type=DELAY", want: map[string]string{"message.type": "DELAY"}},
		{create: true, mod: "+message.type=DELAY,+queue.type=SimpleCQ", want: map[string]string{"message.type": "DELAY", "queue.type": "SimpleCQ"}},
		{create: true, mod: "-message.type", err: "only add attribute is supported while creating topic. key: message.type"},
		{create: true, mod: "+message.type=LATE", err: "value is not in set: [UNSPECIFIED, NORMAL, FIFO, DELAY, TRANSACTION, MIXED]"},
		{create: true, mod: "+colour=red", err: "unsupported key: colour"},
		{create: true, mod: "message.type=DELAY", err: "add/alter attribute format is wrong: message.type"},
		{create: true, mod: "message.type", err: "delete attribute format is wrong: message.type"},
		{create: true, mod: "+message.type=DELAY,+message.type=FIFO", err: "key duplication: +message.type"},
		{current: map[string]string{"message.type": "DELAY"}, mod: "", want: map[string]string{"message.type": "DELAY"}},
		{current: map[string]string{"message.type": "DELAY"}, mod: "+message.type=FIFO", want: map[string]string{"message.type": "FIFO"}},
		{current: map[string]string{"message.type": "DELAY"}, mod: "-message.type", want: map[string]string{}},
		{current: map[string]string{}, mod: "-message.type", err: "attempt to delete a nonexistent key: message.type"},
		{current: map[string]string{}, mod: "+queue.type=BatchCQ", err: "attempt to update an unchangeable attribute. key: queue.type"},
	} {
		changes, err := ParseAttributeChanges(tc.mod)
		var got map[string]string
		if err == nil {
			got, err = AlterAttributes(tc.create, tc.current, changes)
		}
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q (create %v): %v, want %q", tc.mod, tc.create, err, tc.err)
			}
			continue
		}
		if err != nil || !maps.Equal(got, tc.want) {
			t.Errorf("%q (create %v): %v %v, want %v", tc.mod, tc.create, got, err, tc.want)
		}
	}
	if (TopicConfig{}).MessageType() != "NORMAL" {
		t.Error("a topic without message.type is NORMAL")
	}
}
