package interop_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tide-run/tide/internal/apachetest"
	"github.com/tide-run/tide/internal/tailbuf"
)

// javaClient runs java/Scenarios.java (Apache's official Java remoting client, rocketmq-client of the same release
// as the broker) against each target: one JVM per target runs every scenario at once and prints its outcomes, worded
// as the Go scenarios word theirs. tide's outcome must equal Apache's, and Apache's the scenario's expectation.
func javaClient(t *testing.T, targets []target) {
	cp := compileScenarios(t)
	results := make([]map[string]string, len(targets))
	var wg sync.WaitGroup
	for i, tg := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runJava(t, tg, cp)
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

// compileScenarios compiles java/Scenarios.java against Apache's client jars and returns the classpath to run it.
func compileScenarios(t *testing.T) string {
	t.Helper()
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
	return cp + string(filepath.ListSeparator) + classes
}

// javaRestart is the Java client's side of the broker-restart scenario (Scenarios.restart), run beside the Go
// client's: it prints HALF once the first half is consumed, and goes on when told that the restart has begun.
type javaRestart struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *tailbuf.Buffer
	result string
}

func startJavaRestart(t *testing.T, tg target, cp, topic string) *javaRestart {
	t.Helper()
	id := fmt.Sprintf("jr%s%d", tg.name, time.Now().UnixNano()%1e6)
	j := &javaRestart{lines: make(chan string, 4), stderr: &tailbuf.Buffer{Max: 16 << 10}}
	j.cmd = exec.Command("java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Duser.home="+t.TempDir(),
		"-cp", cp, "Scenarios", tg.nameServer, id, "restart="+topic)
	j.cmd.Stderr = j.stderr
	var err error
	if j.stdin, err = j.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := j.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := j.cmd.Start(); err != nil {
		t.Fatalf("java: %v", err)
	}
	t.Cleanup(func() { _ = j.cmd.Process.Kill(); _ = j.cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			j.lines <- sc.Text()
		}
		close(j.lines)
	}()
	return j
}

// next returns the next line the program printed ("" when it exited or printed nothing within d).
func (j *javaRestart) next(d time.Duration) string {
	select {
	case l := <-j.lines:
		return l
	case <-time.After(d):
		return ""
	}
}

// waitHalf waits until the first half was consumed (or the program reported why not).
func (j *javaRestart) waitHalf() error {
	for {
		l := j.next(3 * time.Minute)
		switch {
		case l == "HALF":
			return nil
		case strings.HasPrefix(l, "RESULT "):
			_, j.result, _ = strings.Cut(l, "\t")
		case l == "":
			return fmt.Errorf("the Java client's restart scenario printed no HALF: %s", j.stderr)
		}
	}
}

// goOn tells the program that the restart has begun, then waits for its outcome.
func (j *javaRestart) goOn() string {
	_, _ = fmt.Fprintln(j.stdin, "go")
	if j.result != "" {
		return j.result
	}
	for {
		l := j.next(6 * time.Minute)
		if l == "" {
			return "error: no outcome from the Java client: " + j.stderr.String()
		}
		if r, ok := strings.CutPrefix(l, "RESULT broker restart\t"); ok {
			return r
		}
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
