package interop_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tide-run/tide/internal/apachetest"
)

// javaClient runs java/Scenarios.java (Apache's official Java remoting client, rocketmq-client of the same release
// as the broker) against each target: one JVM per target runs every scenario at once and prints its outcomes, worded
// as the Go scenarios word theirs. tide's outcome must equal Apache's, and Apache's the scenario's expectation.
func javaClient(t *testing.T, targets []target) {
	out, err := exec.Command(apachetest.Script(), "classpath").Output()
	if err != nil {
		t.Fatalf("classpath of Apache's jars: %v", err)
	}
	cp := strings.TrimSpace(string(out))
	_, file, _, _ := runtime.Caller(0)
	classes := t.TempDir()
	if b, err := exec.Command("javac", "-nowarn", "-d", classes, "-cp", cp, filepath.Join(filepath.Dir(file), "java", "Scenarios.java")).CombinedOutput(); err != nil {
		t.Fatalf("javac Scenarios.java: %v\n%s", err, b)
	}
	results := make([]map[string]string, len(targets))
	var wg sync.WaitGroup
	for i, tg := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runJava(t, tg, cp+string(filepath.ListSeparator)+classes)
		}()
	}
	wg.Wait()
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			tide, apache := results[0][sc.name], results[1][sc.name]
			if tide != apache {
				t.Errorf("tide and Apache differ with the Java client:\n  tide:   %s\n  apache: %s", tide, apache)
			}
			if sc.want != "" && apache != sc.want {
				t.Errorf("Apache's outcome with the Java client %q is not the expected %q", apache, sc.want)
			}
		})
	}
}

func runJava(t *testing.T, tg target, cp string) map[string]string {
	id := fmt.Sprintf("j%s%d", tg.name, time.Now().UnixNano()%1e6)
	args := []string{"-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Duser.home=" + t.TempDir(),
		"-cp", cp, "Scenarios", tg.nameServer, id}
	for _, sc := range scenarios {
		topic := createTopic(t, tg, id+"-"+strings.ReplaceAll(sc.name, " ", "-"), queuesFor(sc.name))
		if setup := topicSetup[sc.name]; setup != nil {
			setup(t, tg, topic)
		}
		args = append(args, sc.name+"="+topic)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "java", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Errorf("%s: the Java client's scenarios failed: %v\n%s", tg.name, err, stderr.String())
	}
	res := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "RESULT "); ok {
			name, outcome, _ := strings.Cut(line, "\t")
			res[name] = outcome
		}
	}
	return res
}

// topicSetup changes a scenario's topic after it is created (e.g. its message.type), before the Java client runs.
var topicSetup = map[string]func(t *testing.T, tg target, topic string){}

// queuesFor gives each scenario's topic the queue count its Go version uses.
func queuesFor(name string) int {
	switch name {
	case "sync send", "async send", "oneway send", "ordered by key":
		return 4
	case "tags", "sql92", "broadcasting":
		return 2
	}
	return 1
}
