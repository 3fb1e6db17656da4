package broker

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/tide-run/tide/mq/internal/commitlog"
	"github.com/tide-run/tide/mq/mqmeta"
)

const scheduleGroup = "%SCHEDULE%"

// config holds topics, groups and consumer offsets, persisted as JSON files under dir/config.
type config struct {
	fs  commitlog.FS
	dir string

	// fileMu serializes writing the JSON files (they share temporary names); it is taken before mu, and each write
	// marshals the state current at that moment, so the last write always holds the latest state.
	fileMu sync.Mutex

	mu           sync.RWMutex // guards everything below
	topics       map[string]*mqmeta.TopicConfig
	groups       map[string]*mqmeta.GroupConfig
	offsets      map[string]map[int32]int64 // "topic@group" -> queue -> offset
	offsetsDirty bool
	version      int64
}

func offsetKey(topic, group string) string { return topic + "@" + group }

func loadConfig(fs commitlog.FS, dir string) (*config, error) {
	c := &config{fs: fs, dir: filepath.Join(dir, "config"), topics: map[string]*mqmeta.TopicConfig{},
		groups: map[string]*mqmeta.GroupConfig{}, offsets: map[string]map[int32]int64{}}
	if err := fs.MkdirAll(c.dir); err != nil {
		return nil, fmt.Errorf("broker config: %w", err)
	}
	var topics struct {
		TopicConfigTable map[string]*mqmeta.TopicConfig `json:"topicConfigTable"`
	}
	var groups struct {
		SubscriptionGroupTable map[string]*mqmeta.GroupConfig `json:"subscriptionGroupTable"`
	}
	var offsets struct {
		OffsetTable map[string]map[string]int64 `json:"offsetTable"`
	}
	for name, v := range map[string]any{"topics.json": &topics, "subscriptionGroup.json": &groups, "consumerOffset.json": &offsets} {
		b, err := fs.ReadFile(filepath.Join(c.dir, name))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("broker config: %w", err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			return nil, fmt.Errorf("broker config %s: %w", filepath.Join(c.dir, name), err)
		}
	}
	for k, t := range topics.TopicConfigTable {
		if t != nil {
			t.TopicName = k
			c.topics[k] = t
		}
	}
	for k, g := range groups.SubscriptionGroupTable {
		if g != nil {
			g.GroupName = k
			c.groups[k] = g
		}
	}
	for k, qs := range offsets.OffsetTable {
		m := map[int32]int64{}
		for q, off := range qs {
			id, err := strconv.Atoi(q)
			if err != nil {
				return nil, fmt.Errorf("broker config consumerOffset.json: offsetTable.%s.%s: queue id is not a number", k, q)
			}
			m[int32(id)] = off
		}
		c.offsets[k] = m
	}
	return c, nil
}

func (c *config) topic(name string) (mqmeta.TopicConfig, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.topics[name]
	if !ok {
		return mqmeta.TopicConfig{}, false
	}
	return *t, true
}

func (c *config) topicNames() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	names := make([]string, 0, len(c.topics))
	for n := range c.topics {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (c *config) allTopics() map[string]mqmeta.TopicConfig {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make(map[string]mqmeta.TopicConfig, len(c.topics))
	for n, t := range c.topics {
		out[n] = *t
	}
	return out
}

// putTopic creates or replaces a topic and persists the table. It returns whether anything changed.
func (c *config) putTopic(t mqmeta.TopicConfig) (bool, error) {
	c.fileMu.Lock()
	defer c.fileMu.Unlock()
	c.mu.Lock()
	old, ok := c.topics[t.TopicName]
	if ok && reflect.DeepEqual(*old, t) {
		c.mu.Unlock()
		return false, nil
	}
	c.topics[t.TopicName] = &t
	c.version++
	b, err := c.topicsJSONLocked()
	c.mu.Unlock()
	if err != nil {
		return true, err
	}
	return true, commitlog.WriteFileAtomic(c.fs, filepath.Join(c.dir, "topics.json"), b)
}

// ensureTopic creates t unless a topic of that name exists; it returns the topic in effect.
func (c *config) ensureTopic(t mqmeta.TopicConfig) (mqmeta.TopicConfig, bool, error) {
	c.mu.RLock()
	if old, ok := c.topics[t.TopicName]; ok {
		c.mu.RUnlock()
		return *old, false, nil
	}
	c.mu.RUnlock()
	_, err := c.putTopic(t)
	return t, true, err
}

func (c *config) deleteTopic(name string) (bool, error) {
	c.fileMu.Lock()
	defer c.fileMu.Unlock()
	c.mu.Lock()
	if _, ok := c.topics[name]; !ok {
		c.mu.Unlock()
		return false, nil
	}
	delete(c.topics, name)
	for k := range c.offsets {
		if strings.HasPrefix(k, name+"@") {
			delete(c.offsets, k)
			c.offsetsDirty = true
		}
	}
	c.version++
	b, err := c.topicsJSONLocked()
	c.mu.Unlock()
	if err != nil {
		return true, err
	}
	return true, commitlog.WriteFileAtomic(c.fs, filepath.Join(c.dir, "topics.json"), b)
}

func (c *config) topicsJSONLocked() ([]byte, error) {
	return json.MarshalIndent(map[string]any{"topicConfigTable": c.topics, "dataVersion": map[string]int64{"counter": c.version}}, "", "  ")
}

func (c *config) group(name string) (mqmeta.GroupConfig, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	g, ok := c.groups[name]
	if !ok {
		return mqmeta.GroupConfig{}, false
	}
	return *g, true
}

func (c *config) allGroups() map[string]mqmeta.GroupConfig {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make(map[string]mqmeta.GroupConfig, len(c.groups))
	for n, g := range c.groups {
		out[n] = *g
	}
	return out
}

func (c *config) putGroup(g mqmeta.GroupConfig) error {
	c.fileMu.Lock()
	defer c.fileMu.Unlock()
	c.mu.Lock()
	if old, ok := c.groups[g.GroupName]; ok && *old == g {
		c.mu.Unlock()
		return nil
	}
	c.groups[g.GroupName] = &g
	b, err := json.MarshalIndent(map[string]any{"subscriptionGroupTable": c.groups}, "", "  ")
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return commitlog.WriteFileAtomic(c.fs, filepath.Join(c.dir, "subscriptionGroup.json"), b)
}

func (c *config) ensureGroup(name string) (mqmeta.GroupConfig, error) {
	if g, ok := c.group(name); ok {
		return g, nil
	}
	g := mqmeta.GroupConfig{GroupName: name, ConsumeEnable: true, ConsumeBroadcastEnable: true, RetryQueueNums: 1, RetryMaxTimes: 16}
	return g, c.putGroup(g)
}

func (c *config) deleteGroup(name string) (bool, error) {
	c.fileMu.Lock()
	defer c.fileMu.Unlock()
	c.mu.Lock()
	if _, ok := c.groups[name]; !ok {
		c.mu.Unlock()
		return false, nil
	}
	delete(c.groups, name)
	b, err := json.MarshalIndent(map[string]any{"subscriptionGroupTable": c.groups}, "", "  ")
	c.mu.Unlock()
	if err != nil {
		return true, err
	}
	return true, commitlog.WriteFileAtomic(c.fs, filepath.Join(c.dir, "subscriptionGroup.json"), b)
}

func (c *config) offset(topic, group string, q int32) (int64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	off, ok := c.offsets[offsetKey(topic, group)][q]
	return off, ok
}

func (c *config) setOffset(topic, group string, q int32, off int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := offsetKey(topic, group)
	m := c.offsets[k]
	if m == nil {
		m = map[int32]int64{}
		c.offsets[k] = m
	}
	if old, ok := m[q]; ok && old == off {
		return
	}
	m[q] = off
	c.offsetsDirty = true
}

// groupOffsets returns topic -> queue -> offset for a group.
func (c *config) groupOffsets(group string) map[string]map[int32]int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := map[string]map[int32]int64{}
	for k, qs := range c.offsets {
		i := strings.LastIndexByte(k, '@')
		if i < 0 || k[i+1:] != group {
			continue
		}
		m := map[int32]int64{}
		for q, o := range qs {
			m[q] = o
		}
		out[k[:i]] = m
	}
	return out
}

// deleteGroupOffsets drops every offset of group (on any topic) and reports whether there were any.
func (c *config) deleteGroupOffsets(group string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	found := false
	for k := range c.offsets {
		if i := strings.LastIndexByte(k, '@'); i >= 0 && k[i+1:] == group {
			delete(c.offsets, k)
			found = true
		}
	}
	if found {
		c.offsetsDirty = true
	}
	return found
}

// groupsWithOffsets lists groups that have offsets, per topic.
func (c *config) offsetGroups() map[string][]string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := map[string][]string{}
	for k := range c.offsets {
		i := strings.LastIndexByte(k, '@')
		if i < 0 {
			continue
		}
		out[k[i+1:]] = append(out[k[i+1:]], k[:i])
	}
	return out
}

// persistOffsets writes the offset table if it changed.
func (c *config) persistOffsets(force bool) error {
	c.fileMu.Lock()
	defer c.fileMu.Unlock()
	c.mu.Lock()
	if !c.offsetsDirty && !force {
		c.mu.Unlock()
		return nil
	}
	table := map[string]map[string]int64{}
	for k, qs := range c.offsets {
		m := map[string]int64{}
		for q, o := range qs {
			m[strconv.Itoa(int(q))] = o
		}
		table[k] = m
	}
	c.offsetsDirty = false
	c.mu.Unlock()
	b, err := json.MarshalIndent(map[string]any{"offsetTable": table}, "", "  ")
	if err != nil {
		return err
	}
	if err := commitlog.WriteFileAtomic(c.fs, filepath.Join(c.dir, "consumerOffset.json"), b); err != nil {
		c.mu.Lock()
		c.offsetsDirty = true
		c.mu.Unlock()
		return err
	}
	return nil
}
